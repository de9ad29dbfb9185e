"""Every table of every domain, gathered on one ``MetaData`` for Alembic and for tests."""

from __future__ import annotations

from huinong import idempotency as _idempotency  # noqa: F401
from huinong.credit import models as _credit  # noqa: F401
from huinong.credit.campaigns import models as _campaigns  # noqa: F401
from huinong.db import Base
from huinong.institutions import models as _institutions  # noqa: F401
from huinong.ledger import models as _ledger  # noqa: F401
from huinong.parties import models as _parties  # noqa: F401
from huinong.parties.geography import models as _geography  # noqa: F401
from huinong.parties.households import models as _households  # noqa: F401
from huinong.payments import models as _payments  # noqa: F401
from huinong.payments.bills import models as _bills  # noqa: F401
from huinong.payments.service_points import models as _service_points  # noqa: F401
from huinong.payments.subsidies import models as _subsidies  # noqa: F401
from huinong.security.audit import models as _audit  # noqa: F401
from huinong.security.consent import models as _consent  # noqa: F401
from huinong.security.identities import models as _identities  # noqa: F401
from huinong.security.personal_data import models as _personal_data  # noqa: F401
from huinong.security.terminals import models as _terminals  # noqa: F401

metadata = Base.metadata
