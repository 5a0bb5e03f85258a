"""Imports every model so that metadata is complete wherever the app is created."""

from credits.auth.models import ApiToken, AuditEvent, Organization, User, UserRole  # noqa: F401
from credits.hours.models import Certificate, CreditState, ServiceRecord  # noqa: F401
from credits.ledger.models import Account, Entry, Transaction  # noqa: F401
from credits.merchants.models import Merchant, Service, ServiceDay, Settlement, Voucher  # noqa: F401
from credits.notifications.models import Delivery, Notification, SmsSetting  # noqa: F401
from credits.organizations.models import ActivationToken, MemberInvitation, RosterImport  # noqa: F401
from credits.projects.models import Claim, Project  # noqa: F401
from credits.reports.models import LedgerDay, LedgerRollup  # noqa: F401
from credits.reviews.models import Review, ReviewCandidate, ReviewReviewer, ReviewScore  # noqa: F401
from credits.settings.models import PolicySetting  # noqa: F401
