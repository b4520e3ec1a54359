"""Accept or reject each received envelope, with a reason; never raise.

Rejections are counted and logged by the caller, never fatal.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import envelope as env
from .helper import PARALLEL_FROM
from .policy import Policy
from .signing import Answer, BadSignature, Keyring, UnknownKey

# Rejection reasons, as counted in metrics and printed by debpulse-tail.
UNSIGNED = "unsigned"
BAD_SIGNATURE = "bad-signature"
UNKNOWN_KEY = "unknown-key"
TOPIC_NOT_ALLOWED = "topic-not-allowed"
DUPLICATE = "duplicate-msg-id"
OUT_OF_WINDOW = "timestamp-outside-window"
SCOPE_NOT_ACCEPTED = "scope-not-accepted"
MALFORMED = "malformed"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = "ok"
    scope: str | None = None       # which signature scope was checked
    signer: str | None = None      # fingerprint of a good signature
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason, "scope": self.scope, "signer": self.signer}


# Verdicts are frozen: the accepting ones are made once and shared, not
# made anew for every message.
_UNSIGNED_ACCEPTED = Verdict(True, "ok (unsigned accepted)")


class Verifier:
    """`scopes`: the signature scopes accepted.  The default is the envelope
    scope alone: a fedmsg-scope signature covers only `msg`, so its topic
    could have been swapped.  Add "fedmsg" to read real fedmsg publishers."""

    def __init__(
        self,
        keyring: Keyring,
        policy: Policy | None = None,
        *,
        scopes: tuple[str, ...] = (env.SCOPE_ENVELOPE,),
        window: float = 600.0,
        require_signature: bool = True,
        remember: int = 100_000,
    ) -> None:
        self.keyring = keyring
        self.policy = policy or Policy()
        self.scopes = scopes
        self.window = window
        self.require_signature = require_signature
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._good: dict[tuple[str, str], Verdict] = {}
        # Signatures of a burst checked together (`prepare`): id(envelope)
        # -> (envelope, fingerprint or the exception).  Holding the envelope
        # keeps its id from being reused while the entry lives.
        self._prepared: dict[int, tuple[Mapping[str, Any], Answer]] = {}

    def prepare(self, envelopes: list[Mapping[str, Any]]) -> None:
        """Check the signatures of a burst in one go, where the keyring can
        check many at once (in two processes); `check` then uses each
        answer once.  Replaces what an earlier burst left unused."""
        check_many = getattr(self.keyring, "check_many", None)
        self._prepared = {}
        if check_many is None or getattr(self.keyring, "processes", 1) < 2 or len(envelopes) < PARALLEL_FROM:
            return  # one process: each is checked as it comes, nothing to gain
        todo: list[Mapping[str, Any]] = []
        pairs: list[tuple[bytes, bytes]] = []
        for envelope in envelopes:
            try:
                sig = env.signature_of(envelope)
                if sig is None or sig[0] not in self.scopes:
                    continue
                pairs.append((env.signed_data(envelope, sig[0]), sig[1]))
            except Exception:  # check() says what is wrong with it
                continue
            todo.append(envelope)
        try:
            answers = check_many(pairs)
        except Exception:  # whatever a hostile burst raises: each is then checked alone, with its reason
            return
        self._prepared = {id(e): (e, signer) for e, signer in zip(todo, answers, strict=True)}

    def check(self, envelope: Mapping[str, Any], *, replayed: bool = False, now: float | None = None) -> Verdict:
        try:
            return self._check(envelope, replayed, now)
        except Exception as exc:  # whatever a hostile envelope raises is a rejection, never a crash
            return Verdict(False, MALFORMED, detail=f"{type(exc).__name__}: {str(exc)[:100]}")

    def _check(self, envelope: Mapping[str, Any], replayed: bool, now: float | None) -> Verdict:
        try:
            sig = env.signature_of(envelope)
        except env.MalformedFrame as exc:
            return Verdict(False, MALFORMED, detail=str(exc))
        verdict = self._check_signature(envelope, sig)
        if not verdict.ok:
            return verdict
        # Replayed messages are old by nature; their order is checked by seq_id.
        if not replayed and self.window and abs((now or time.time()) - float(envelope["timestamp"])) > self.window:
            return Verdict(False, OUT_OF_WINDOW, verdict.scope, verdict.signer,
                           f"timestamp {envelope['timestamp']}")
        # Under the fedmsg scope msg_id is not signed: a genuine message sent
        # again under a new msg_id carries the same signature, so that is the
        # key that recognises it.
        seen = envelope["msg_id"] if verdict.scope != env.SCOPE_FEDMSG else "sig:" + str(envelope["signature"])
        if seen in self._seen:
            return Verdict(False, DUPLICATE, verdict.scope, verdict.signer, envelope["msg_id"])
        self._seen[seen] = None
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        return verdict

    def forget(self, envelope: Mapping[str, Any]) -> None:
        """Let this message be accepted again (a consumer that could not
        take it and will receive it once more)."""
        self._seen.pop(envelope.get("msg_id"), None)
        self._seen.pop("sig:" + str(envelope.get("signature")), None)

    def _check_signature(self, envelope: Mapping[str, Any], sig: tuple[str, bytes] | None) -> Verdict:
        if sig is None:
            if self.require_signature:
                return Verdict(False, UNSIGNED)
            return _UNSIGNED_ACCEPTED
        scope, signature = sig
        if scope not in self.scopes:
            return Verdict(False, SCOPE_NOT_ACCEPTED, scope,
                           detail=f"signature covers {'msg only' if scope == env.SCOPE_FEDMSG else scope}")
        prepared = self._prepared.pop(id(envelope), None) if self._prepared else None
        try:
            if prepared is None or prepared[0] is not envelope:
                signer = self.keyring.verify(env.signed_data(envelope, scope), signature)
            elif isinstance(prepared[1], str):
                signer = prepared[1]
            else:
                raise prepared[1]
        except UnknownKey as exc:
            return Verdict(False, UNKNOWN_KEY, scope, detail=str(exc))
        except BadSignature as exc:
            return Verdict(False, BAD_SIGNATURE, scope, detail=str(exc))
        if not self.policy.allows(signer, envelope["topic"]):
            return Verdict(False, TOPIC_NOT_ALLOWED, scope, signer, envelope["topic"])
        good = self._good.get((scope, signer))
        if good is None:
            good = self._good[(scope, signer)] = Verdict(True, "ok", scope, signer)
        return good
