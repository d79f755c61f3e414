"""blindspot.figures"""
