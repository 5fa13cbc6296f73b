"""The aggregator: test equipment playing the phone network behind courier's External channel.

It records every MT courier sends, answers as configured (status, errors, latency, hangs) and posts
delivery callbacks back through the load balancer. See docs/standin/aggregator.md.
"""
