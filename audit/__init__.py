"""Tamper-evident SQLite audit log, verification and replay.

    AuditLog          audit.log      write steps before they run; approvals broker; reads
    verify            audit.verify   check the chain, the tables and the head checkpoint
    TerminalReplay,   audit.replay   step through a session; run it again and diff frames
      rerun
    export_html,      audit.export   one self-contained HTML page; an animated GIF
      export_gif
    register          audit.cli      deskhand audit verify|head, sessions, replay, export
"""
