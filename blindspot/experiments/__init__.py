"""blindspot.experiments"""
