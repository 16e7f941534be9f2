"""The admin console's core: accounts, sessions, the audit log and live configuration edits.

The HTTP side (``hallctl/http/admin.py``) and the CLI call into :class:`AdminConsole`; it
never imports either. See docs/admin.md.
"""

from hallctl.admin.accounts import ADMIN_ROLES, AdminConsole, Session

__all__ = ["ADMIN_ROLES", "AdminConsole", "Session"]
