from models.invite_batch import InviteRow
from models.spreadsheets import xlsx_bytes

INVITE_SHEET_HEADER = ("path", "level", "role", "name", "phone", "link")


def invite_sheet(rows: list[InviteRow]) -> bytes:
    return xlsx_bytes(
        INVITE_SHEET_HEADER,
        ((r.path, r.level, r.role, r.roster_name, r.roster_phone, r.link) for r in rows),
        title="invites",
    )
