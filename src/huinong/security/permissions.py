"""Who may call what: one declared table, route by route.

Each row names a route as the API serves it (method and path template) and the roles that
may call it. A route missing from the table is refused to everyone, so a new route is closed
until someone decides who may use it; a test checks that the table and the application's
routes agree row for row. Auditors read the table at ``GET /api/v1/security/permissions``.

Roles decide *which routes*; the principal's institution decides *which rows*: every query
filters on it, so a role here never reaches another institution's data.
"""

from __future__ import annotations

from huinong.security.principals import STAFF_ROLES, Role

A = Role

# Routes anyone may call, signed in or not.
PUBLIC: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
        ("POST", "/api/v1/auth/sign-in"),
        ("POST", "/api/v1/auth/refresh"),
        ("POST", "/api/v1/auth/customer/one-time-code"),
        ("POST", "/api/v1/auth/customer/sign-in"),
    }
)

EVERYONE = frozenset(Role)
BACK_OFFICE_READERS = frozenset({A.admin, A.auditor, A.risk_officer})
CUSTOMER_READERS = frozenset(
    {A.admin, A.teller, A.account_manager, A.approver, A.risk_officer, A.auditor}
)

# Those who decide on, price or oversee credit read its models, rules and decisions.
CREDIT_READERS = frozenset({A.account_manager, A.approver, A.risk_officer, A.auditor})

PERMISSIONS: dict[tuple[str, str], frozenset[Role]] = {
    # signed-in callers
    ("GET", "/api/v1/auth/me"): EVERYONE,
    ("POST", "/api/v1/auth/sign-out"): EVERYONE,
    ("POST", "/api/v1/auth/password"): EVERYONE - {A.customer},
    # institutions and offices
    ("GET", "/api/v1/institution"): STAFF_ROLES,
    ("GET", "/api/v1/offices"): STAFF_ROLES,
    ("POST", "/api/v1/offices"): frozenset({A.admin}),
    # staff users and the permission table
    ("GET", "/api/v1/staff-users"): frozenset({A.admin, A.auditor}),
    ("POST", "/api/v1/staff-users"): frozenset({A.admin}),
    ("GET", "/api/v1/staff-users/{user_id}"): frozenset({A.admin, A.auditor}),
    ("PUT", "/api/v1/staff-users/{user_id}/roles"): frozenset({A.admin}),
    ("POST", "/api/v1/staff-users/{user_id}/unlock"): frozenset({A.admin}),
    ("POST", "/api/v1/staff-users/{user_id}/disable"): frozenset({A.admin}),
    ("POST", "/api/v1/customer-credentials"): frozenset({A.admin, A.teller}),
    ("GET", "/api/v1/security/permissions"): frozenset({A.admin, A.auditor}),
    # ledger (back office)
    ("POST", "/api/v1/ledger/accounts"): frozenset({A.admin}),
    ("GET", "/api/v1/ledger/accounts"): BACK_OFFICE_READERS,
    ("GET", "/api/v1/ledger/accounts/{account_id}"): BACK_OFFICE_READERS,
    ("GET", "/api/v1/ledger/accounts/{account_id}/balance"): BACK_OFFICE_READERS,
    ("GET", "/api/v1/ledger/accounts/{account_id}/statement"): BACK_OFFICE_READERS,
    ("POST", "/api/v1/ledger/transfers"): frozenset({A.admin}),
    ("GET", "/api/v1/ledger/transfers"): BACK_OFFICE_READERS,
    ("GET", "/api/v1/ledger/transfers/{transfer_id}"): BACK_OFFICE_READERS,
    # credit: risk officers write models and rules, approvers put them in force (four eyes)
    ("GET", "/api/v1/credit/features"): CREDIT_READERS,
    ("GET", "/api/v1/credit/scorecards"): CREDIT_READERS,
    ("GET", "/api/v1/credit/scorecards/{scorecard_id}"): CREDIT_READERS,
    ("PUT", "/api/v1/credit/scorecards/{scorecard_id}/role"): frozenset({A.approver}),
    ("POST", "/api/v1/credit/rule-sets"): frozenset({A.risk_officer}),
    ("GET", "/api/v1/credit/rule-sets"): CREDIT_READERS,
    ("GET", "/api/v1/credit/rule-sets/{rule_set_id}"): CREDIT_READERS,
    ("POST", "/api/v1/credit/rule-sets/{rule_set_id}/activation"): frozenset({A.approver}),
    ("GET", "/api/v1/credit/decisions/{decision_id}"): CREDIT_READERS,
    ("POST", "/api/v1/credit/decisions/{decision_id}/replay"): CREDIT_READERS,
    ("POST", "/api/v1/credit/bureau-files"): frozenset({A.risk_officer}),
    # village credit campaigns: account managers run them, an approver signs them off;
    # reviewers see only their own sheet and ratings (blind review: the panel-wide reads
    # below are not granted to them)
    ("POST", "/api/v1/credit/campaigns"): frozenset({A.account_manager}),
    ("GET", "/api/v1/credit/campaigns"): CREDIT_READERS,
    ("GET", "/api/v1/credit/campaigns/{campaign_id}"): CREDIT_READERS,
    ("POST", "/api/v1/credit/campaigns/{campaign_id}/survey-imports"): frozenset(
        {A.account_manager}
    ),
    ("GET", "/api/v1/credit/campaigns/{campaign_id}/survey-imports/{import_id}/errors"): (
        CREDIT_READERS
    ),
    ("GET", "/api/v1/credit/campaigns/{campaign_id}/households"): CREDIT_READERS,
    ("POST", "/api/v1/credit/campaigns/{campaign_id}/cross-check"): frozenset(
        {A.account_manager, A.risk_officer}
    ),
    ("GET", "/api/v1/credit/campaigns/{campaign_id}/flags"): CREDIT_READERS,
    ("POST", "/api/v1/credit/campaigns/{campaign_id}/reviewers"): frozenset({A.account_manager}),
    ("GET", "/api/v1/credit/campaigns/{campaign_id}/review-sheet"): frozenset({A.reviewer}),
    ("PUT", "/api/v1/credit/campaigns/{campaign_id}/ratings/{campaign_household_id}"): frozenset(
        {A.reviewer}
    ),
    ("GET", "/api/v1/credit/campaigns/{campaign_id}/ratings"): CREDIT_READERS,
    ("GET", "/api/v1/credit/campaigns/{campaign_id}/peer-aggregates"): CREDIT_READERS,
    ("POST", "/api/v1/credit/campaigns/{campaign_id}/decision"): frozenset({A.account_manager}),
    ("GET", "/api/v1/credit/campaigns/{campaign_id}/report"): CREDIT_READERS,
    ("POST", "/api/v1/credit/campaigns/{campaign_id}/sign-off"): frozenset({A.approver}),
    ("GET", "/api/v1/credit/campaigns/{campaign_id}/publication"): CREDIT_READERS,
    # customers
    ("POST", "/api/v1/customers"): frozenset({A.admin, A.teller, A.account_manager}),
    ("GET", "/api/v1/customers"): CUSTOMER_READERS,
    ("GET", "/api/v1/customers/{customer_id}"): CUSTOMER_READERS,
    ("POST", "/api/v1/customers/lookup"): CUSTOMER_READERS,
    # full ID number / phone, per field as personal_data.masking.REVEALABLE says
    ("POST", "/api/v1/customers/{customer_id}/reveal"): frozenset(
        {A.teller, A.account_manager, A.risk_officer}
    ),
    # deposit accounts and payments
    ("POST", "/api/v1/deposit-accounts"): frozenset({A.admin, A.teller}),
    ("GET", "/api/v1/deposit-accounts/{account_number}"): CUSTOMER_READERS | {A.agent},
    ("POST", "/api/v1/deposit-accounts/{account_number}/close"): frozenset({A.admin, A.teller}),
    ("POST", "/api/v1/cash-deposits"): frozenset({A.teller}),
    ("POST", "/api/v1/cash-withdrawals"): frozenset({A.teller}),
    ("POST", "/api/v1/transfers"): frozenset({A.teller, A.agent, A.partner}),
    ("POST", "/api/v1/payments/{payment_id}/reversal"): frozenset({A.admin, A.approver}),
    ("GET", "/api/v1/payments/{payment_id}"): CUSTOMER_READERS | {A.agent, A.partner},
    # geography and grids (issue 4)
    ("GET", "/api/v1/divisions"): STAFF_ROLES,
    ("GET", "/api/v1/divisions/{division_code}"): STAFF_ROLES,
    ("POST", "/api/v1/grids"): frozenset({A.admin}),
    ("GET", "/api/v1/grids"): CUSTOMER_READERS,
    ("GET", "/api/v1/grids/{grid_id}"): CUSTOMER_READERS,
    ("POST", "/api/v1/grids/{grid_id}/villages"): frozenset({A.admin}),
    ("POST", "/api/v1/grids/{grid_id}/villages/removal"): frozenset({A.admin}),
    ("PUT", "/api/v1/grids/{grid_id}/manager"): frozenset({A.admin}),
    ("GET", "/api/v1/grids/{grid_id}/customers"): CUSTOMER_READERS,
    ("PUT", "/api/v1/customers/{customer_id}/village"): frozenset(
        {A.admin, A.teller, A.account_manager}
    ),
    # households and archives (issue 4)
    ("POST", "/api/v1/households"): frozenset({A.teller, A.account_manager}),
    ("GET", "/api/v1/households"): CUSTOMER_READERS,
    ("GET", "/api/v1/households/{household_id}"): CUSTOMER_READERS,
    ("POST", "/api/v1/households/{household_id}/members"): frozenset({A.teller, A.account_manager}),
    ("POST", "/api/v1/households/{household_id}/head"): frozenset({A.teller, A.account_manager}),
    ("DELETE", "/api/v1/households/{household_id}/members/{member_id}"): frozenset(
        {A.teller, A.account_manager}
    ),
    # the archive is credit data: surveyed by account managers, read by those deciding on credit
    ("POST", "/api/v1/households/{household_id}/archive-versions"): frozenset({A.account_manager}),
    ("GET", "/api/v1/households/{household_id}/archive-versions"): frozenset(
        {A.account_manager, A.approver, A.risk_officer, A.auditor}
    ),
    ("GET", "/api/v1/households/{household_id}/archive"): frozenset(
        {A.account_manager, A.approver, A.risk_officer}
    ),
    ("GET", "/api/v1/customers/{customer_id}/view"): CUSTOMER_READERS,
    ("PUT", "/api/v1/customers/{customer_id}/default-account"): frozenset({A.teller}),
    ("POST", "/api/v1/customers/{customer_id}/farmer-code"): frozenset({A.teller}),
    ("GET", "/api/v1/customers/{customer_id}/farmer-code"): CUSTOMER_READERS,
    ("DELETE", "/api/v1/customers/{customer_id}/farmer-code"): frozenset({A.teller}),
    ("POST", "/api/v1/party-lookup"): frozenset({A.teller, A.account_manager, A.agent, A.partner}),
    # bills (issue 4): billers are set up by admins; tellers and agent terminals take payments
    ("POST", "/api/v1/billers"): frozenset({A.admin}),
    ("GET", "/api/v1/billers"): CUSTOMER_READERS | {A.agent},
    ("GET", "/api/v1/billers/{biller_id}"): CUSTOMER_READERS | {A.agent},
    ("PATCH", "/api/v1/billers/{biller_id}"): frozenset({A.admin}),
    ("POST", "/api/v1/billers/{biller_id}/bill-files"): frozenset({A.admin, A.teller}),
    ("POST", "/api/v1/billers/{biller_id}/bill-queries"): frozenset({A.teller, A.agent}),
    ("GET", "/api/v1/billers/{biller_id}/settlement-file"): frozenset({A.admin, A.auditor}),
    ("POST", "/api/v1/billers/{biller_id}/reconciliations"): frozenset({A.admin}),
    ("GET", "/api/v1/bill-reconciliations/{reconciliation_id}"): frozenset({A.admin, A.auditor}),
    ("GET", "/api/v1/bills"): CUSTOMER_READERS | {A.agent},
    ("GET", "/api/v1/bills/{bill_id}"): CUSTOMER_READERS | {A.agent},
    ("POST", "/api/v1/bill-payments"): frozenset({A.teller, A.agent}),
    ("GET", "/api/v1/bill-payments/{payment_id}"): CUSTOMER_READERS | {A.agent},
    ("POST", "/api/v1/bill-payments/{payment_id}/confirmation"): frozenset({A.admin, A.teller}),
    # subsidies (issue 4)
    ("POST", "/api/v1/subsidy-batches"): frozenset({A.teller, A.account_manager}),
    ("GET", "/api/v1/subsidy-batches"): CUSTOMER_READERS | {A.gov_viewer},
    ("GET", "/api/v1/subsidy-batches/{batch_id}"): CUSTOMER_READERS | {A.gov_viewer},
    ("GET", "/api/v1/subsidy-batches/{batch_id}/errors"): CUSTOMER_READERS | {A.gov_viewer},
    ("GET", "/api/v1/subsidy-batches/{batch_id}/rows"): CUSTOMER_READERS,
    ("POST", "/api/v1/subsidy-batches/{batch_id}/submission"): frozenset(
        {A.teller, A.account_manager}
    ),
    ("POST", "/api/v1/subsidy-batches/{batch_id}/approval"): frozenset({A.approver}),
    ("POST", "/api/v1/subsidy-batches/{batch_id}/rejection"): frozenset({A.approver}),
    ("POST", "/api/v1/subsidy-batches/{batch_id}/disbursement"): frozenset(
        {A.teller, A.account_manager, A.approver}
    ),
    # service points (issue 4)
    ("GET", "/api/v1/agent-terms"): frozenset({A.admin, A.auditor, A.risk_officer}),
    ("PUT", "/api/v1/agent-terms"): frozenset({A.admin}),
    ("POST", "/api/v1/service-points"): frozenset({A.admin}),
    ("GET", "/api/v1/service-points"): BACK_OFFICE_READERS | {A.teller, A.account_manager},
    ("GET", "/api/v1/service-points/{service_point_id}"): BACK_OFFICE_READERS
    | {A.teller, A.account_manager},
    ("GET", "/api/v1/service-points/{service_point_id}/day-report"): BACK_OFFICE_READERS
    | {A.teller},
    ("POST", "/api/v1/agent-commissions"): frozenset({A.admin}),
    ("POST", "/api/v1/deposit-accounts/{account_number}/pin"): frozenset({A.teller}),
    ("POST", "/api/v1/agent/balance-inquiries"): frozenset({A.agent}),
    ("POST", "/api/v1/agent/withdrawals"): frozenset({A.agent}),
    ("POST", "/api/v1/agent/withdrawal-codes"): frozenset({A.agent}),
    ("POST", "/api/v1/agent/withdrawals/by-farmer-code"): frozenset({A.agent}),
    ("POST", "/api/v1/agent/deposits"): frozenset({A.agent}),
    ("POST", "/api/v1/agent/transfers"): frozenset({A.agent}),
    ("POST", "/api/v1/agent/bill-payments"): frozenset({A.agent}),
    # terminals
    ("POST", "/api/v1/terminals"): frozenset({A.admin}),
    ("GET", "/api/v1/terminals"): BACK_OFFICE_READERS,
    ("GET", "/api/v1/terminals/self"): frozenset({A.agent, A.buyer}),
    ("GET", "/api/v1/terminals/{terminal_id}"): BACK_OFFICE_READERS,
    ("POST", "/api/v1/terminals/{terminal_id}/activate"): frozenset({A.admin}),
    ("POST", "/api/v1/terminals/{terminal_id}/suspend"): frozenset({A.admin}),
    ("POST", "/api/v1/terminals/{terminal_id}/revoke"): frozenset({A.admin}),
    ("POST", "/api/v1/terminals/{terminal_id}/keys"): frozenset({A.admin}),
    ("PUT", "/api/v1/terminals/{terminal_id}/geofence"): frozenset({A.admin}),
    ("DELETE", "/api/v1/terminals/{terminal_id}/geofence"): frozenset({A.admin}),
    ("GET", "/api/v1/terminal-alerts"): BACK_OFFICE_READERS,
    ("GET", "/api/v1/platform-key"): STAFF_ROLES,
    # consent
    ("POST", "/api/v1/customers/{customer_id}/consents"): frozenset({A.teller, A.account_manager}),
    ("GET", "/api/v1/customers/{customer_id}/consents"): frozenset(
        {A.teller, A.account_manager, A.auditor}
    ),
    ("POST", "/api/v1/consents/{consent_id}/revocation"): frozenset({A.teller, A.account_manager}),
    ("POST", "/api/v1/consents/check"): frozenset(
        {A.teller, A.account_manager, A.approver, A.risk_officer, A.auditor}
    ),
    # audit
    ("GET", "/api/v1/audit-records"): frozenset({A.auditor}),
    ("GET", "/api/v1/audit/verification"): frozenset({A.auditor}),
}


def allowed_roles(method: str, path: str) -> frozenset[Role]:
    """The roles that may call a route; empty for a route nobody has been granted."""
    return PERMISSIONS.get((method, path), frozenset())


def is_public(method: str, path: str) -> bool:
    return (method, path) in PUBLIC
