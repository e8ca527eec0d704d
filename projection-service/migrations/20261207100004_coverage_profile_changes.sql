-- What an account's tier, ARR and renewal date were, change by change, so that a report about a
-- past day uses that day's facts (docs/DOMAIN.md section 1). One row per event that sets any of
-- them: the onboarding with all three, later changes with what they set (NULL: unchanged). The
-- CSM of a past day comes from coverage_handoffs.
CREATE TABLE coverage_profile_changes (
    customer_id  uuid          NOT NULL,
    sequence     bigint        NOT NULL,
    occurred_at  timestamptz   NOT NULL,
    tier         text,
    arr          numeric(16,2),
    renewal_date date,
    PRIMARY KEY (customer_id, sequence)
);
CREATE INDEX coverage_profile_changes_occurred ON coverage_profile_changes (occurred_at);

-- A store that already holds customers: their changes so far, read from the store itself (a
-- `projection-service rebuild --projection coverage` computes the same).
DO $$
BEGIN
    IF to_regclass('public.events') IS NOT NULL THEN
        INSERT INTO coverage_profile_changes (customer_id, sequence, occurred_at, tier, arr, renewal_date)
        SELECT e.aggregate_id::uuid, e.sequence, e.occurred_at,
               e.payload -> e.event_type ->> 'tier',
               (e.payload -> e.event_type ->> 'arr')::numeric,
               (e.payload -> e.event_type ->> 'renewal_date')::date
          FROM events e
         WHERE e.aggregate_type = 'Customer'
           AND e.event_type IN ('CustomerOnboarded', 'CustomerProfileUpdated', 'CustomerRenewed')
           AND e.occurred_at IS NOT NULL
           AND (e.payload -> e.event_type ->> 'tier' IS NOT NULL OR e.payload -> e.event_type ->> 'arr' IS NOT NULL
                OR e.payload -> e.event_type ->> 'renewal_date' IS NOT NULL)
           AND NOT EXISTS (SELECT 1 FROM events r WHERE r.aggregate_type = 'Customer'
                              AND r.aggregate_id = e.aggregate_id AND r.event_type = 'CustomerRetracted')
        ON CONFLICT DO NOTHING;
    END IF;
END $$;
