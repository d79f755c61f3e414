"""blindspot.toy"""
