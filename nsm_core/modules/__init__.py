"""Model components: router, gated state update, state attention, state manager, layer, model."""

from nsm_core.modules.hooks import HookPoint
from nsm_core.modules.model import NSMModel, NSMOutput, NSMState
from nsm_core.modules.tutorial import TutorialConfig, TutorialDynamics

__all__ = ["HookPoint", "NSMModel", "NSMOutput", "NSMState", "TutorialConfig", "TutorialDynamics"]
