"""登记: staff record complaints received by phone, letter, visit or hand-off (issue 16) and print
the reporter a receipt slip (回执) with the codes to follow the case."""
