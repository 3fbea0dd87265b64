"""Deployable reference stacks."""
