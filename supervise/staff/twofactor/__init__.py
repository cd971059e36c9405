"""Two-factor sign-in for staff (TOTP, RFC 6238): enrolment with a QR code, the second step of
signing in, recovery codes, and an admin's reset of a lost phone.

`services` holds the rules (no Flask request handling); `views` the 账号安全 pages and the second
step of /staff/login. The sign-in budgets and the "must enrol first" gate live with the rest of
sign-in in supervise/staff/auth.py.
"""
