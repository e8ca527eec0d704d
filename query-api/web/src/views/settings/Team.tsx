// Settings › CSMs: the team's CSMs with their book and monthly capacity, registering a CSM and
// changing a CSM's capacity (admins and managers).

import { useState } from "react";
import { useQuery } from "urql";
import { Button, Form, InlineLoading, InlineNotification, Modal, NumberInput, TableBody, TableCell, TableHead, TableHeader, TableRow, TextInput } from "@carbon/react";
import { graphql } from "../../gql";
import { useSession } from "../../App";
import { CommandError, command } from "../../api/commands";
import { Pager, Table } from "../../components";
import { count, money, one, pct } from "../../format";
import { Refused } from "./common";
import { useReadBack } from "../../hooks";

const TEAM = graphql(`
  query SettingsTeam {
    csms {
      csmId
      name
      email
      team
      monthlyCapacityHours
    }
    csmWorkload {
      csms {
        csmId
        accounts
        arr
        hoursNeeded
        utilizationPct
      }
    }
  }
`);

const PAGE = 25;

export function Team() {
  const session = useSession();
  const mayChange = session.role === "admin" || session.role === "manager";
  const [{ data, error }, refetch] = useQuery({ query: TEAM, requestPolicy: "cache-and-network" });
  const [offset, setOffset] = useState(0);
  const [changing, setChanging] = useState<{ csmId: string; name: string; hours: number } | null>(null);
  const refresh = () => refetch({ requestPolicy: "network-only" });
  const expect = useReadBack(data, refresh);
  if (error) return <InlineNotification kind="error" title="The team could not be read" subtitle={error.message} hideCloseButton lowContrast />;
  if (!data) return <InlineLoading description="Reading the team" />;
  const books = new Map(data.csmWorkload.csms.map((c) => [c.csmId, c]));
  return (
    <div style={{ maxWidth: "72rem" }}>
      <p className="cs-muted" style={{ margin: "1rem 0" }}>
        {count(data.csms.length, "CSM", "CSMs")}. Capacity is the hours a month a CSM gives to accounts; the workload report compares it with the hours
        their book needs under the rules' hours per tier.
      </p>
      {mayChange ? <NewCsm onAdded={(email) => expect((read) => read.csms.some((c) => c.email === email))} /> : null}
      <Table size="md" aria-label="CSMs">
        <TableHead>
          <TableRow>
            <TableHeader>CSM</TableHeader>
            <TableHeader>Team</TableHeader>
            <TableHeader>Accounts</TableHeader>
            <TableHeader>ARR</TableHeader>
            <TableHeader>Hours a month: needed of capacity</TableHeader>
            <TableHeader>Utilization</TableHeader>
            {mayChange ? (
              <TableHeader>
                <span className="cs-visually-hidden">Actions</span>
              </TableHeader>
            ) : null}
          </TableRow>
        </TableHead>
        <TableBody>
          {data.csms.slice(offset, offset + PAGE).map((csm) => {
            const book = books.get(csm.csmId);
            return (
              <TableRow key={csm.csmId} data-testid="csm-row">
                <TableCell>
                  {csm.name}
                  <div className="cs-muted">{csm.email}</div>
                </TableCell>
                <TableCell>{csm.team || "—"}</TableCell>
                <TableCell>{book?.accounts ?? 0}</TableCell>
                <TableCell>{money(book?.arr ?? "0")}</TableCell>
                <TableCell data-testid="csm-capacity">
                  {one(book?.hoursNeeded ?? 0)} of {csm.monthlyCapacityHours} h
                </TableCell>
                <TableCell>{pct(book?.utilizationPct ?? 0)}</TableCell>
                {mayChange ? (
                  <TableCell>
                    <Button kind="ghost" size="sm" onClick={() => setChanging({ csmId: csm.csmId, name: csm.name, hours: csm.monthlyCapacityHours })}>
                      Change capacity
                    </Button>
                  </TableCell>
                ) : null}
              </TableRow>
            );
          })}
        </TableBody>
      </Table>
      <Pager label="CSMs" offset={offset} size={PAGE} total={data.csms.length} onChange={setOffset} />
      {changing ? (
        <Capacity
          csm={changing}
          onClose={(hours) => {
            const csmId = changing.csmId;
            setChanging(null);
            if (hours !== null) expect((read) => read.csms.some((c) => c.csmId === csmId && c.monthlyCapacityHours === hours));
          }}
        />
      ) : null}
    </div>
  );
}

function Capacity({ csm, onClose }: { csm: { csmId: string; name: string; hours: number }; onClose: (hours: number | null) => void }) {
  const session = useSession();
  const [hours, setHours] = useState(csm.hours);
  const [state, setState] = useState<{ busy: boolean; error: CommandError | null }>({ busy: false, error: null });
  return (
    <Modal
      open
      modalHeading={`${csm.name}'s capacity`}
      primaryButtonText={state.busy ? "Saving…" : "Save"}
      primaryButtonDisabled={state.busy}
      secondaryButtonText="Cancel"
      onRequestClose={() => onClose(null)}
      onRequestSubmit={async () => {
        setState({ busy: true, error: null });
        try {
          await command(session, "PUT", `/api/v1/csms/${csm.csmId}/capacity`, { monthly_capacity_hours: hours });
          onClose(hours);
        } catch (e) {
          setState({ busy: false, error: CommandError.from(e) });
        }
      }}
    >
      <NumberInput
        id="capacity-hours"
        label="Hours a month for accounts"
        min={1}
        max={744}
        step={1}
        value={hours}
        onChange={(_, { value }) => setHours(Number(value))}
        invalid={Boolean(state.error?.field("monthly_capacity_hours"))}
        invalidText={state.error?.field("monthly_capacity_hours")}
      />
      {state.error && !state.error.field("monthly_capacity_hours") ? <Refused error={state.error} /> : null}
    </Modal>
  );
}

function NewCsm({ onAdded }: { onAdded: (email: string) => void }) {
  const session = useSession();
  const blank = { name: "", email: "", team: "", hours: 120 };
  const [form, setForm] = useState(blank);
  const [state, setState] = useState<{ busy: boolean; error: CommandError | null; added: string | null }>({ busy: false, error: null, added: null });
  const invalid = (name: string) => ({ invalid: Boolean(state.error?.field(name)), invalidText: state.error?.field(name) });
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setState({ busy: true, error: null, added: null });
    try {
      await command(session, "POST", "/api/v1/csms", {
        name: form.name.trim(),
        email: form.email.trim(),
        team: form.team.trim(),
        monthly_capacity_hours: form.hours,
      });
      setState({ busy: false, error: null, added: form.name.trim() });
      setForm(blank);
      onAdded(form.email.trim());
    } catch (e) {
      setState({ busy: false, error: CommandError.from(e), added: null });
    }
  };
  const shown = ["name", "email", "team", "monthly_capacity_hours"];
  return (
    <Form onSubmit={submit} aria-label="Register a CSM" className="cs-inline-form">
      <TextInput id="csm-name" labelText="Name" value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} {...invalid("name")} />
      <TextInput id="csm-email" labelText="E-mail" value={form.email} onChange={(e) => setForm({ ...form, email: e.target.value })} {...invalid("email")} />
      <TextInput id="csm-team" labelText="Team (optional)" value={form.team} onChange={(e) => setForm({ ...form, team: e.target.value })} {...invalid("team")} />
      <NumberInput
        id="csm-hours"
        label="Hours a month"
        min={1}
        max={744}
        value={form.hours}
        onChange={(_, { value }) => setForm({ ...form, hours: Number(value) })}
        {...invalid("monthly_capacity_hours")}
      />
      <Button type="submit" disabled={state.busy || !form.name.trim() || !form.email.trim()}>
        {state.busy ? "Registering…" : "Register the CSM"}
      </Button>
      {state.error && !shown.some((f) => state.error?.field(f)) ? <Refused error={state.error} /> : null}
      {state.added ? <InlineNotification kind="success" title={`${state.added} is registered.`} hideCloseButton lowContrast role="status" /> : null}
    </Form>
  );
}
