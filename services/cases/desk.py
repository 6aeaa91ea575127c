"""What the API needs of the case store: the store, its workflow and the label relay."""

from __future__ import annotations

from dataclasses import dataclass

from services.cases.relay import LabelRelay
from services.cases.store import CaseStore
from services.cases.workflow import Workflow


@dataclass
class CaseDesk:
    store: CaseStore
    workflow: Workflow
    relay: LabelRelay | None = None

    def start(self) -> None:
        if self.relay is not None:
            self.relay.start()

    def close(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        self.store.close()
