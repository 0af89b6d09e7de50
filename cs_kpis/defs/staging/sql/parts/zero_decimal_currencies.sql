-- Stripe's zero-decimal currencies (amounts are in whole units, not cents): the one list every staging model
-- that turns a minor amount into a major one uses, inside `in (...)`.
'BIF', 'CLP', 'DJF', 'GNF', 'JPY', 'KMF', 'KRW', 'MGA', 'PYG', 'RWF', 'UGX', 'VND', 'VUV', 'XAF', 'XOF', 'XPF'
