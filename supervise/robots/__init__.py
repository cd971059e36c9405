"""Group robots (群机器人): an org's WeCom (企业微信) or DingTalk (钉钉) group hears of its escalations
(督办) and of answers awaiting its review, through the outbox like every other channel.

models.py: the robots an admin sets per discipline body (webhook and signing secret sealed at rest);
services.py: which robots a change tells (rows queued in the change's transaction), the admin's
edits, the webhook address check (no requests into the intranet by an admin's typo);
channel.py: the message (no reporter data, no complaint content), signing and the providers' answers;
views.py: the section of the orgs admin page.
"""
