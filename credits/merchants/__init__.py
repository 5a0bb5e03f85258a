"""Merchants of the commercial street, their services, vouchers (兑换券), redemption and settlement."""
