"""Operator tools on plain Kafka clients: produce, tail, forward, dlq, demo.

They speak to the topics the worker reads and writes; none of them runs the engine.
"""
