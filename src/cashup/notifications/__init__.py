"""Notifications: per-user subscriptions to live events, sent on webhooks, Telegram, e-mail and push services."""
