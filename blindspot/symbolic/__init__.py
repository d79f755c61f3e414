"""blindspot.symbolic"""
