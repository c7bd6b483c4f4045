"""The provisioning steps, each declared once: name, topic, prerequisites, what it does, what it may touch.

Everything else derives from these declarations: the initial state of a tenant's steps and
the fan-in (`shared.domain.tenant`), the topic a step's command goes to, the local wiring and
`make emulate` (`functions.topology`), the deployed functions and their grants
(`scripts.deploy_config`, read by deploy.sh) and the step table in the docs. A step's action is
registered apart, by name, next to the other actions (`shared.handlers.provisioning`).

The steps form a DAG: a step with no prerequisites is published at onboarding; a step is
released by the transaction that completes the last of its prerequisites (its command staged in
the outbox there, published after the commit); the
tenant is ACTIVE when every step is DONE.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class StepDeclaration:
    """One provisioning step.

    `grants` are the roles of the step function's service account, written as deploy.sh's
    `grant` reads them: ROLE (project-wide), ROLE@central (the central dataset only),
    ROLE@tenant-datasets, ROLE@topic:NAME, ROLE@key; `{lifecycle}` stands for the lifecycle
    topic's name, `{purge_role}` for the custom role that deletes datasets. The state document
    (datastore.user), the step's own dead-letter topic and the topics of the steps it releases
    are granted to every step by deploy.sh.
    """

    name: str
    topic: str
    prerequisites: tuple[str, ...]
    summary: str
    grants: tuple[str, ...] = ()

    @property
    def function(self) -> str:
        """The name of the step's Cloud Function (and of its entry point in main.py)."""
        return f"step_{self.name}"


STEP_DECLARATIONS: list[StepDeclaration] = [
    StepDeclaration(
        name="subscription",
        topic="onboarding-subscription",
        prerequisites=(),
        summary="records the subscription (plan, limits, start) in the state document",
    ),
    StepDeclaration(
        name="quota",
        topic="onboarding-quota",
        prerequisites=(),
        summary="records today's usage quota (limits of the plan, no run yet) in the state document",
    ),
    StepDeclaration(
        name="dataset",
        topic="onboarding-dataset",
        prerequisites=(),
        summary="the tenant's dataset and its validation table, with the validation row written and read back",
        # Creating a dataset is a project permission (bigquery.datasets.create); jobs run in the project;
        # an orphan dataset may be deleted (force_recreate_dataset) with the purge's role, tenant datasets only.
        grants=("bigquery.jobUser", "bigquery.dataEditor", "{purge_role}@tenant-datasets"),
    ),
    StepDeclaration(
        name="view",
        topic="onboarding-view",
        prerequisites=("subscription", "quota", "dataset"),
        summary="the tenant's tenant_comprehensive_view (its own DDL only); the tenant becomes ACTIVE, its analytics copy is appended",
        # The copy rows are appended to the central tables (no job).
        grants=("bigquery.dataEditor@central", "pubsub.publisher@topic:{lifecycle}"),
    ),
]


def steps() -> tuple[StepDeclaration, ...]:
    """Every declared step, in declaration order (prerequisites before the steps that need them)."""
    return tuple(STEP_DECLARATIONS)


def step_names() -> tuple[str, ...]:
    """The names of every declared step."""
    return tuple(step.name for step in STEP_DECLARATIONS)


def declaration(name: str) -> StepDeclaration:
    """The declaration of step `name`; KeyError if there is none."""
    for step in STEP_DECLARATIONS:
        if step.name == name:
            return step
    raise KeyError(name)


def prerequisites_of(name: str) -> tuple[str, ...]:
    """The steps that must be DONE before `name` runs."""
    return declaration(name).prerequisites


def root_steps() -> tuple[str, ...]:
    """Steps with no prerequisites: published at onboarding."""
    return tuple(step.name for step in STEP_DECLARATIONS if not step.prerequisites)


def dependents_of(name: str) -> tuple[str, ...]:
    """Steps that have `name` among their prerequisites."""
    return tuple(step.name for step in STEP_DECLARATIONS if name in step.prerequisites)


def validate(declarations: list[StepDeclaration]) -> None:
    """Names unique, prerequisites declared earlier (which also rules out cycles)."""
    seen: set[str] = set()
    for step in declarations:
        if step.name in seen:
            raise ValueError(f"step {step.name} is declared twice")
        unknown = [name for name in step.prerequisites if name not in seen]
        if unknown:
            raise ValueError(f"step {step.name}: prerequisites {unknown} must be declared before it")
        seen.add(step.name)


@contextmanager
def declared(step: StepDeclaration) -> Iterator[StepDeclaration]:
    """Declare one more step for the duration of the block (how a test adds a step to the graph)."""
    validate([*STEP_DECLARATIONS, step])
    STEP_DECLARATIONS.append(step)
    try:
        yield step
    finally:
        STEP_DECLARATIONS.remove(step)


validate(STEP_DECLARATIONS)
