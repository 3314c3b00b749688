"""The dry run: calls, tokens and cost a :class:`~.run.Datagen` run of a plan would need, cached work
excluded (teacher replies found in the cache, and the cached gradings of an answer found there), online
and through the Batch APIs. Nothing is called."""

from __future__ import annotations

from typing import TYPE_CHECKING

from skillmix_tasks.prompts import extract_answer, student_turn2, two_turn_messages

from skillmix.grading.cost import estimate_tokens, message_tokens
from skillmix.grading.estimate import CallEstimate

from .leakage import check_leakage
from .pool import Plan

if TYPE_CHECKING:
    from .run import Datagen


def estimate(dg: "Datagen", plan: Plan) -> dict:
    """Calls, tokens and cost ``dg`` would need for ``plan``, cached work excluded; no call is made."""
    cache = dg.judge.cache
    reply_tokens = min(dg.teacher.max_tokens, dg.teacher.typical_reply_tokens)
    placeholder = "x" * (4 * reply_tokens // 3)  # an answer of typical length, for answers not yet written
    per_k: dict[str, dict] = {}
    plan.check()
    for k in plan.ks:
        items = plan.items(k)
        n_heldout = check_leakage(items, plan.allow_heldout)
        teacher, judge = CallEstimate(), CallEstimate()
        for item in items:
            for g in range(plan.generations):
                m1 = two_turn_messages(item)
                hit1 = cache.get(dg.teacher.key(m1, g)) if cache else None
                answer = None
                if hit1 is None:  # both turns to do; turn 2's prompt holds a typical turn-1 reply
                    dg.teacher.estimate(teacher, m1, [g], hits={})
                    teacher.add(message_tokens(m1) + reply_tokens + estimate_tokens(student_turn2(item)),
                                reply_tokens=reply_tokens)
                else:
                    m2 = two_turn_messages(item, [hit1.reply])
                    hit2 = cache.get(dg.teacher.key(m2, g)) if cache else None
                    answer = extract_answer(hit2.reply) if hit2 else None
                    dg.teacher.estimate(teacher, m2, [g], hits={dg.teacher.key(m2, g): hit2} if hit2 else {})
                judge += dg.judge.call_estimate([(item, answer if answer is not None else placeholder)],
                                                  lookup=answer is not None)
        per_k[str(k)] = {"conversations": len(items) * plan.generations, "heldout_items": n_heldout,
                         **teacher.to_dict(dg.teacher_price, "teacher_"),
                         **judge.to_dict(dg.judge.price, "judge_")}

    def total(field: str) -> float | None:
        costs = [d[f"{who}_{field}"] for d in per_k.values() for who in ("teacher", "judge")]
        return None if None in costs else round(sum(costs), 4)

    return {"dry_run": True, "mode": "batch" if dg.batch else "online", "teacher": str(dg.teacher_spec),
            "judge": dg.judge.spec, "per_k": per_k, "total_cost_est": total("cost_est"),
            "total_batch_cost_est": total("batch_cost_est"), "max_cost": dg.budget.max_cost if dg.budget else None}
