-- Whether a proration credits unused time (takes the old item off) rather than charging the remaining time:
-- the one rule stg_billing__invoice_lines and stg_billing__invoice_items use, as a boolean expression over
-- the columns is_proration, credited_invoice_id (null where Stripe names no credited line: always on an
-- invoice item, whose credited_items API 2025-03-31.basil does not give), amount_minor and description.
-- A credit is what Stripe marks as one: a named credited line, or a negative amount. The sign says nothing
-- when a discount took all of it (Stripe's prorations are net of discounts: amount 0); then only Stripe's
-- English description tells: "Unused time on ..." for a credit ("Remaining time on ..." for a charge). A
-- localized or reworded description makes such a 0 credit a charge: the check
-- zero_amount_prorations_are_recognised lists the rows that rule cannot tell.
is_proration
    and coalesce(credited_invoice_id is not null
                 or amount_minor < 0
                 or (amount_minor = 0 and description like 'Unused time%'), false)
