"""Figures for coordinators: the dashboard, tables by project, organisation, merchant and volunteer, exports."""
