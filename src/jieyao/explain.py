"""Help text for the rules the chassis itself emits (recognisers bring their own via `rule_help`)."""

from __future__ import annotations

CHASSIS_RULE_HELP: dict[str, str] = {
    "limit.depth": "A container is nested deeper than max_depth; it was listed but not opened. Raise --max-depth "
                   "to look inside. Deep nesting is a classic way to hide content from scanners.",
    "limit.members": "A container has more entries than max_members; only the first ones were scanned.",
    "limit.member_bytes": "A member is larger than max_member_bytes (declared or while extracting); it was not "
                          "extracted. Raise --max-member-bytes to scan it.",
    "limit.target_bytes": "More than max_target_bytes were extracted from one target; scanning of that target "
                          "stopped. Typical of decompression bombs such as 42.zip.",
    "limit.ratio": "A member expands more than max_ratio times its packed size past ratio_floor_bytes; "
                   "extraction stopped. Typical of a flat high-ratio bomb.",
    "limit.time": "A target took longer than max_seconds; scanning of that target stopped.",
    "limit.remote_bytes": "A remote object (fsspec URI) was larger than spool_max_bytes; it was not copied or scanned.",
    "limit.file_bytes": "A file is larger than max_file_bytes; it was not hashed, only its structure was read.",
    "limit.solid_block": "A 7z member hit a limit inside a solid block several times; the remaining members "
                         "were not scanned, since each retry decompresses the whole block again.",
    "limit.zip_overlap": "ZIP central-directory entries overlap each other: the non-recursive zip bomb technique. "
                         "The archive was not extracted.",
    "intake.corrupt": "A container or member could not be read: truncated, corrupt, or malformed.",
    "intake.encrypted": "Members (or the whole listing) are encrypted; their content could not be checked. "
                        "Encryption is common for distributing face-swap packs past filters.",
    "intake.unsupported": "The container uses a feature jieyao cannot read (a compression method, a multi-volume "
                          "set not starting at the first volume).",
    "intake.rar_backend_missing": "A RAR member is compressed and no RAR backend is installed (install Debian's "
                                  "'unar', or 'unrar').",
    "intake.unsafe_name": "Member names would escape or break an extraction directory ('..', absolute paths, "
                          "NUL, invalid UTF-8). jieyao never extracts under member names; noted for analysts.",
    "intake.special_member": "Symlinks, hardlinks, devices or fifos inside an archive: listed, never followed.",
    "intake.sfx": "A self-extracting executable: its embedded archive was opened and scanned.",
    "intake.pe_overlay": "A PE executable carries data after its sections but no archive signature was found.",
    "intake.recogniser_error": "A recogniser failed on this item; the item needs a human look.",
}
