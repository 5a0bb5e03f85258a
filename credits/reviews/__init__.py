"""The annual review of projects (优秀服务项目评审)."""
