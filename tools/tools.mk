# tools.mk — tools built beside usher (the live-event simulator).
