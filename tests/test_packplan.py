"""The packing planner on literal costs: which packing ends a sweep soonest on the cluster that is there."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcjobs import packplan
from hpcjobs.packplan import Costs, choose, slots
from hpcjobs.vocab import lanes

# digits_depth: 4 architectures × 6 runs, ~2.6 s of training each, a fresh TensorFlow process ~18 s.
DIGITS = [f"p{i // 6}" for i in range(24)]
LAB = Costs(startup_s=18.0, compile_s=1.5, overlap=0.0, queue_s=5.0, gpu=False)  # fake GPUs: CPUs


def shape(plan: packplan.Plan) -> tuple[int, int, int]:
    return plan.tasks, plan.processes, plan.runs_per_process


def test_two_gpus_two_full_tasks_not_twelve_small_ones() -> None:
    # The case: today 12 tasks × 2 processes × 1 run, each paying a start-up for 2.6 s of training.
    plan = choose([2.6] * 24, DIGITS, LAB, slots=2, max_processes=2)
    assert shape(plan) == (2, 1, 12)
    # 5 s queue + 18 s start-up + 12 × 2.6 s training + one more program compiled in each process.
    assert plan.seconds == pytest.approx(5 + 18 + 12 * 2.6 + 1.5)
    assert (plan.slots, plan.startup_s, plan.run_s) == (2, 18.0, pytest.approx(2.6))


def test_sixty_four_gpus_spread_the_runs_until_start_up_dominates() -> None:
    plan = choose([2.6] * 24, DIGITS, LAB, slots=64)
    assert shape(plan) == (24, 1, 1)  # every run at once: a start-up each, but all in parallel
    assert plan.seconds == pytest.approx(5 + 18 + 2.6)


def test_start_up_dominating_gives_few_full_tasks() -> None:
    # 0.2 s runs behind a 30 s start-up and a 20 s queue: a second task saves less than it costs.
    costs = Costs(startup_s=30.0, compile_s=0.0, overlap=0.0, queue_s=20.0)
    plan = choose([0.2] * 40, ["a"] * 40, costs, slots=16)
    assert plan.tasks == 5 and plan.runs_per_process == 8  # not 16 tasks: 10 s of training saved 1.6 s
    assert plan.seconds == pytest.approx(20 + 30 + 8 * 0.2)
    one_slot = choose([0.2] * 40, ["a"] * 40, costs, slots=1)
    assert shape(one_slot) == (1, 1, 40)


def test_training_dominating_spreads_over_the_slots() -> None:
    # Large models: 10 min a run, so a start-up saved is nothing beside a run trained in parallel.
    plan = choose([600.0] * 24, DIGITS, LAB, slots=16)
    assert shape(plan) == (12, 1, 2)  # 16 tasks would still take 2 runs' time
    assert plan.seconds == pytest.approx(5 + 18 + 2 * 600)
    wide = choose([600.0] * 24, DIGITS, LAB, slots=64)
    assert shape(wide) == (24, 1, 1)


def test_a_qos_limit_of_four_gpus_caps_the_slots() -> None:
    assert slots(16, 1, partition_gpus=64, user_gpus=4) == 4
    assert slots(16, 2, partition_gpus=64, user_gpus=4) == 2  # two GPUs a task
    assert slots(16, 1, partition_gpus=2) == 2
    assert slots(16, 1, max_jobs=3) == 3
    assert slots(16, 0, partition_gpus=2, user_gpus=1) == 16  # CPU tasks: GPU limits do not apply
    assert slots(16, 1, partition_gpus=0) == 1
    plan = choose([600.0] * 24, DIGITS, LAB, slots=slots(16, 1, partition_gpus=64, user_gpus=4))
    assert shape(plan) == (4, 1, 6)


def test_a_busy_queue_makes_fewer_fuller_tasks() -> None:
    runs = [5.0] * 48
    quiet = choose(runs, ["a"] * 48, Costs(18.0, 1.5, 0.0, packplan.QUEUE_S, False), slots=16)
    busy = choose(runs, ["a"] * 48, Costs(18.0, 1.5, 0.0, packplan.BUSY_QUEUE_S, False), slots=4)
    assert quiet.tasks == 16
    assert busy.tasks == 4  # one wave: a second wave would wait in the queue again


def test_processes_share_a_gpu_when_they_add_throughput() -> None:
    gpu = Costs(startup_s=18.0, compile_s=1.5, overlap=packplan.GPU_OVERLAP, queue_s=5.0)
    plan = choose([2.6] * 1000, ["a"] * 1000, gpu, slots=16, max_processes=4)
    assert (plan.tasks, plan.processes) == (16, 4)
    cpu = choose([2.6] * 1000, ["a"] * 1000, LAB, slots=16, max_processes=4)
    assert cpu.processes == 1  # without a GPU's room, a second process only adds its start-up


def test_the_time_limit_caps_a_task() -> None:
    # 20 min less the 120 s signal lead: at 1.5× safety a task holds at most (1080 / 1.5 - 18) / 60 runs.
    limit = packplan.limit_seconds(20, 120)
    assert limit == 1080
    plan = choose([60.0] * 40, ["a"] * 40, LAB, slots=1, limit_s=limit)
    assert plan.runs_per_process <= 11 and plan.tasks == 4 and not plan.over_limit
    assert (18 + 11 * 60) * packplan.SAFETY <= 1080 < (18 + 12 * 60) * packplan.SAFETY
    alone = choose([60.0] * 40, ["a"] * 40, LAB, slots=1)
    assert shape(alone) == (1, 1, 40)


def test_runs_longer_than_the_limit_get_a_process_each_and_say_so() -> None:
    plan = choose([3000.0] * 3, ["a"] * 3, LAB, slots=8, limit_s=1080)
    assert shape(plan) == (3, 1, 1) and plan.over_limit


def test_the_local_executor_starts_no_more_tasks_than_slots() -> None:
    plan = choose([2.6] * 24, DIGITS, Costs(8.0, 1.5, 0.0, 0.0), slots=2, max_tasks=2)
    assert shape(plan) == (2, 1, 12)


def test_no_runs_no_tasks() -> None:
    assert choose([], [], LAB, slots=4).tasks == 0


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.2, "~1 s"), (49.2, "~50 s"), (300, "~5 min"), (9000, "~2.5 h")]
)
def test_rounded(seconds: float, text: str) -> None:
    assert packplan.rounded(seconds) == text


@settings(deadline=None, max_examples=60)
@given(
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=8),
    run_s=st.floats(0.1, 900.0),
    startup_s=st.floats(0.0, 60.0),
    n_slots=st.integers(1, 64),
    k=st.integers(1, 4),
    limit=st.one_of(st.none(), st.floats(60.0, 7200.0)),
)
def test_every_run_placed_once_and_programs_kept_together(
    sizes: list[int], run_s: float, startup_s: float, n_slots: int, k: int, limit: float | None
) -> None:
    programs = [f"p{i}" for i, size in enumerate(sizes) for _ in range(size)]
    ids = [f"{p}-{j}" for j, p in enumerate(programs)]
    costs = Costs(startup_s, 1.5, packplan.GPU_OVERLAP, 5.0)
    plan = choose([run_s] * len(ids), programs, costs, slots=n_slots, max_processes=k, limit_s=limit)
    tasks = [ids[i : i + plan.task_size] for i in range(0, len(ids), plan.task_size)]
    processes = [lane for task in tasks for lane in lanes(task, plan.processes)]
    assert sorted(itertools.chain.from_iterable(processes)) == sorted(ids)
    assert len(tasks) == plan.tasks and all(len(p) <= plan.runs_per_process for p in processes)
    owners = [{r.split("-")[0] for r in p} for p in processes]
    for program in dict.fromkeys(programs):
        held = [i for i, names in enumerate(owners) if program in names]
        # A program's processes are consecutive, and those between its first and last hold it alone.
        assert held == list(range(held[0], held[-1] + 1))
        assert all(owners[i] == {program} for i in held[1:-1])
    if limit is not None and not plan.over_limit:
        for task in tasks:
            share = len(lanes(task, plan.processes))
            slowdown = share / (1 + (share - 1) * costs.overlap)
            for lane in lanes(task, plan.processes):
                changes = sum(a.split("-")[0] != b.split("-")[0] for a, b in itertools.pairwise(lane))
                seconds = startup_s + 1.5 * changes + slowdown * run_s * len(lane)
                assert seconds * packplan.SAFETY <= limit * (1 + 1e-9)
    if limit is None and n_slots == 1 and k == 1:
        assert shape(plan) == (1, 1, len(ids))  # one slot, no limit: one process, no program split
