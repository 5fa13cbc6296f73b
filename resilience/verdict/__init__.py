"""The experiment's verdict rule: every checker finding is judged against the experiment's policy.

A finding is excused only by an allowance that names its kind, the fault it belongs to, a window around
that fault and a maximum count (allowances.py); an unknown checker passes only where the experiment
declares that unknown with a reason; every fault kind has recovery bounds the topology promises
(bounds.py). decision.py applies the policy to every finding and says which finding broke which rule;
the test, the console summary, the report and `resilience check DIR` all use that one decision.
"""

from resilience.verdict.allowances import Allowance, PolicyError
from resilience.verdict.decision import Decision, Judgement, decide
from resilience.verdict.policy import Policy

__all__ = ["Allowance", "Decision", "Judgement", "Policy", "PolicyError", "decide"]
