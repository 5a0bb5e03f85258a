"""Service hours (志愿时长): on-site check-in, manual records, review, coin settlement and certificates."""
