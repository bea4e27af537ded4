"use strict";
// Small conveniences only: every page works without script.
document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
  select.addEventListener("change", () => select.form.submit());
});
document.querySelectorAll("button[data-confirm]").forEach((button) => {
  button.addEventListener("click", (event) => {
    if (!window.confirm(button.dataset.confirm)) event.preventDefault();
  });
});
document.querySelectorAll("[data-toggle]").forEach((toggle) => {
  const target = document.getElementById(toggle.dataset.toggle);
  target.hidden = true;
  toggle.hidden = false;
  toggle.addEventListener("click", () => { target.hidden = !target.hidden; });
});
document.querySelectorAll("time[datetime]").forEach((el) => {
  const when = new Date(el.getAttribute("datetime"));
  if (!Number.isNaN(when.getTime())) el.title = when.toLocaleString();
});
