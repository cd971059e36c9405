"""单位考核: a yearly and quarterly score per unit from admin-weighted parts (issue 17)."""
