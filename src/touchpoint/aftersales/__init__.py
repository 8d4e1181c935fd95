"""aftersales"""
