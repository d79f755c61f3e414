"""blindspot.diagnostics"""
