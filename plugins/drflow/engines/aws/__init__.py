"""AWS sources: EBS and RDS snapshots through the amazon provider's hooks (plain boto3 on the incident CLI)."""
