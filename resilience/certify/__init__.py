"""`resilience certify PLAN`: certify a candidate version against the current one under the same faults
(docs/certify.md). plan.py reads the plan, run.py runs the phases, compare.py decides, certificate.py writes
the certificate."""
