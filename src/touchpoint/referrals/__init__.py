"""referrals"""
