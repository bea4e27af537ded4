"""tether's own components, registered through the ``tether.plugins`` entry point like any
plugin's. Importing the modules is what registers them."""

from tether import guards as guards
from tether import models as models
from tether import redteam as redteam
