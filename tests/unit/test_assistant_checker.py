"""The checker every model answer passes before anyone sees it, and what of a streamed answer may
be shown while it is written."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from touchpoint.assistant.grounding import Grounding, Source, check, mask_personal_data, shown_so_far
from touchpoint.assistant.provider import CircuitBreaker
from touchpoint.config import ConfigError, load_settings

GROUNDING = Grounding("how long do refunds take?", "en", [
    Source("faq:refund-timing", "How long does a refund take?", "Refunds reach you within 5 working days."),
    Source("faq:returns", "How do I return something?", "Returns are free within 30 days."),
])


def test_a_grounded_answer_passes_without_its_citation_marks() -> None:
    checked = check("Refunds reach you within 5 working days [faq:refund-timing].", GROUNDING)
    assert (checked.outcome, checked.text, checked.cited) == (
        "sent", "Refunds reach you within 5 working days.", ("faq:refund-timing",))


@pytest.mark.parametrize(("answer", "outcome", "reason"), [
    ("NO_ANSWER", "refused", "no_answer"),
    ("", "refused", "empty"),
    ("Refunds take 5 days.", "rejected", "no_citation"),
    ("Refunds take 5 days [faq:refund-timing], [faq:express-refunds].", "rejected", "unknown_source"),
    ("I'll refund you today [faq:refund-timing].", "rejected", "promise"),
    ("We have issued a refund for you [faq:refund-timing].", "rejected", "promise"),
    ("Your refund has been approved [faq:refund-timing].", "rejected", "promise"),
    ("We will call you back tomorrow [faq:returns].", "rejected", "promise"),
    ("Мы вернём вам деньги сегодня [faq:refund-timing].", "rejected", "promise"),
    ("Я перезвоню вам завтра [faq:returns].", "rejected", "promise"),
    ("我们会为您退款 [faq:refund-timing]。", "rejected", "promise"),
    ("已为您办理退款 [faq:refund-timing]。", "rejected", "promise"),
])
def test_the_checker_rejects_what_it_must(answer: str, outcome: str, reason: str) -> None:
    checked = check(answer, GROUNDING)
    assert (checked.outcome, checked.reason) == (outcome, reason)


@pytest.mark.parametrize("policy", [
    "Refunds reach you within 5 working days of our receiving the item [faq:refund-timing].",
    "We send a confirmation e-mail once the parcel leaves [faq:returns].",
    "Посылку мы отправляем в течение дня [faq:returns].",
    "Возврат денег занимает до 5 рабочих дней [faq:refund-timing].",
    "退款会在5个工作日内到账 [faq:refund-timing]。",
])
def test_stating_a_policy_is_not_a_promise(policy: str) -> None:
    assert check(policy, GROUNDING).outcome == "sent"


def test_a_streamed_answer_is_shown_only_while_it_is_clean() -> None:
    assert shown_so_far("NO_AN", GROUNDING) is None  # could be the refusal: wait
    assert shown_so_far("Refunds reach you [faq:refu", GROUNDING) == "Refunds reach you"
    assert shown_so_far("Refunds reach you [faq:refund-timing] in", GROUNDING) == "Refunds reach you in"
    assert shown_so_far("Yes [faq:other] and", GROUNDING) is None
    assert shown_so_far("Sure, I will refund", GROUNDING) is None


def test_personal_data_in_the_question_is_masked() -> None:
    assert mask_personal_data("mail a.b@shop.de or call +49 (170) 123-4567 about BH-100198") == (
        "mail [email] or call [phone] about BH-100198")


def test_the_breaker_opens_after_failures_in_a_row_and_closes_on_success() -> None:
    breaker = CircuitBreaker(failures=2, cooldown_s=60)
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    assert not breaker.open
    breaker.failed()
    assert breaker.open


@pytest.mark.parametrize(("url", "key", "refused"), [
    ("https://api.openai.com/v1", "sk-changeme", "placeholder"),
    ("https://api.openai.com/v1", "short-key", "placeholder"),
    ("http://models.example.net/v1", "sk-" + "a1B2c3D4e5F6g7H8i9J0k", "unencrypted"),
])
def test_a_weak_or_exposed_api_key_is_refused(url: str, key: str, refused: str) -> None:
    settings = load_settings(_env_file=None, llm_base_url=url, llm_api_key=SecretStr(key))
    with pytest.raises(ConfigError, match=refused):
        settings.llm_key()


def test_a_local_model_needs_no_key_and_a_bad_url_is_refused() -> None:
    assert load_settings(_env_file=None, llm_base_url="http://127.0.0.1:11434/v1").llm_key() == "none"
    key = SecretStr("sk-" + "a1B2c3D4e5F6g7H8i9J0k")
    assert load_settings(_env_file=None, llm_base_url="http://10.0.0.5:8000/v1", llm_api_key=key).llm_key()
    with pytest.raises(ConfigError, match="TOUCHPOINT_LLM_BASE_URL"):
        load_settings(_env_file=None, llm_base_url="ftp://models")
