"""What comes in from a chat channel: update de-duplication, flood control, deep-link payloads.

The way out (the Channel protocol, templates, the outbox and its sender) is ``touchpoint.messaging``.
"""
