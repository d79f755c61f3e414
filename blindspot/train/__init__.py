"""blindspot.train"""
