"""The reports drflow computes for a spec (`reports:`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from drflow.spec.types import NAME_PATTERN, Schedule

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


class _ReportModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RpoComplianceReport(_ReportModel):
    """The RPO compliance DAG: the RPO each component could achieve right now, against its objective."""

    enabled: bool = Field(default=True, description="Generate the rpo-compliance report DAG.")
    schedule: Schedule = Field(default="*/15 * * * *", description="How often compliance is computed.")
    target: Name | None = Field(
        default=None, description="Storage target that receives the report (default: the first)."
    )


class Reports(_ReportModel):
    """Reports drflow computes from the store and the servers."""

    rpo_compliance: RpoComplianceReport = Field(default_factory=RpoComplianceReport)
