"""The optional generative assistant: grounded answers, staff reply drafts and translation through
any OpenAI-compatible model. Off while ``TOUCHPOINT_LLM_BASE_URL`` is unset; the offline matcher
stays the default and the fallback."""
