"""blindspot.nn"""
