// Settings › Partners: the partner organisations with their portal users and customers;
// registering an organisation, inviting, activating and deactivating its users, and assigning
// customers to it in bulk (admins and managers; docs/WEB.md).

import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import {
  Button,
  Checkbox,
  Form,
  InlineLoading,
  InlineNotification,
  Modal,
  Search,
  TableBody,
  TableCell,
  TableHead,
  TableHeader,
  TableRow,
  Tag,
  TextArea,
  TextInput,
} from "@carbon/react";
import { graphql } from "../../gql";
import type { SettingsPartnersQuery } from "../../gql/graphql";
import { useSession } from "../../App";
import { CommandError, command } from "../../api/commands";
import { Pager, Table } from "../../components";
import { count, when } from "../../format";
import { useReadBack } from "../../hooks";
import { Refused } from "./common";

const PARTNERS = graphql(`
  query SettingsPartners {
    partners {
      partnerId
      name
      registeredAt
      customerCount
      users {
        userId
        name
        email
        status
        reason
        invitedAt
        changedAt
      }
    }
  }
`);

type Organisation = SettingsPartnersQuery["partners"][number];
type PartnerUser = Organisation["users"][number];

const STATUS: Record<string, { words: string; tag: "green" | "gray" | "red" }> = {
  INVITED: { words: "invited", tag: "gray" },
  ACTIVE: { words: "active", tag: "green" },
  DEACTIVATED: { words: "deactivated", tag: "red" },
};

const PAGE = 10;

export function Partners() {
  const [{ data, error }, refetch] = useQuery({ query: PARTNERS, requestPolicy: "cache-and-network" });
  const refresh = () => refetch({ requestPolicy: "network-only" });
  const expect = useReadBack(data, refresh);
  const [offset, setOffset] = useState(0);
  const [inviting, setInviting] = useState<Organisation | null>(null);
  const [assigning, setAssigning] = useState<Organisation | null>(null);
  const [deactivating, setDeactivating] = useState<{ partner: Organisation; user: PartnerUser } | null>(null);
  if (error) return <InlineNotification kind="error" title="The partners could not be read" subtitle={error.message} hideCloseButton lowContrast />;
  if (!data) return <InlineLoading description="Reading the partners" />;
  const userIs = (partnerId: string, userId: string, status: string) => (read: SettingsPartnersQuery) =>
    read.partners.some((p) => p.partnerId === partnerId && p.users.some((u) => u.userId === userId && u.status === status));
  return (
    <div style={{ maxWidth: "72rem" }}>
      <p className="cs-muted" style={{ margin: "1rem 0" }}>
        {count(data.partners.length, "partner organisation", "partner organisations")}. A partner's users see only the customers assigned to their
        organisation, and submit status reports on them. An invited user can sign in once activated; a deactivated one is refused on every request.
      </p>
      <NewPartner onAdded={(name) => expect((read) => read.partners.some((p) => p.name === name))} />
      {data.partners.length === 0 ? <p className="cs-muted">No partner organisation yet.</p> : null}
      {data.partners.slice(offset, offset + PAGE).map((partner) => (
        <section key={partner.partnerId} className="cs-tile" data-testid="partner" aria-labelledby={`partner-${partner.partnerId}`} style={{ marginTop: "1.5rem" }}>
          <div className="cs-toolbar" style={{ justifyContent: "space-between" }}>
            <div>
              <h2 id={`partner-${partner.partnerId}`}>{partner.name}</h2>
              <p className="cs-muted">
                Registered {when(partner.registeredAt)}.{" "}
                <Link to={`/customers?partner=${partner.partnerId}`} data-testid="partner-customers">
                  {count(partner.customerCount, "customer", "customers")}
                </Link>
              </p>
            </div>
            <div>
              <Button kind="tertiary" size="sm" onClick={() => setAssigning(partner)}>
                Assign customers
              </Button>{" "}
              <Button kind="tertiary" size="sm" onClick={() => setInviting(partner)}>
                Invite a user
              </Button>
            </div>
          </div>
          {partner.users.length === 0 ? (
            <p className="cs-muted">No user invited yet.</p>
          ) : (
            <Table size="sm" aria-label={`${partner.name}'s users`}>
              <TableHead>
                <TableRow>
                  <TableHeader>User</TableHeader>
                  <TableHeader>Status</TableHeader>
                  <TableHeader>Since</TableHeader>
                  <TableHeader>
                    <span className="cs-visually-hidden">Actions</span>
                  </TableHeader>
                </TableRow>
              </TableHead>
              <TableBody>
                {partner.users.map((user) => (
                  <TableRow key={user.userId} data-testid="partner-user">
                    <TableCell>
                      {user.name}
                      <div className="cs-muted">
                        <a href={`mailto:${user.email}`}>{user.email}</a>
                      </div>
                    </TableCell>
                    <TableCell>
                      <Tag type={STATUS[user.status].tag} size="sm">
                        {STATUS[user.status].words}
                      </Tag>
                      {user.reason ? <div className="cs-muted">{user.reason}</div> : null}
                    </TableCell>
                    <TableCell>{when(user.changedAt)}</TableCell>
                    <TableCell>
                      {user.status !== "ACTIVE" ? (
                        <Activate partner={partner} user={user} onDone={() => expect(userIs(partner.partnerId, user.userId, "ACTIVE"))} />
                      ) : null}
                      {user.status !== "DEACTIVATED" ? (
                        <Button kind="ghost" size="sm" onClick={() => setDeactivating({ partner, user })}>
                          Deactivate
                        </Button>
                      ) : null}
                    </TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          )}
        </section>
      ))}
      <Pager label="partner organisations" offset={offset} size={PAGE} total={data.partners.length} onChange={setOffset} />
      {inviting ? (
        <Invite
          partner={inviting}
          onClose={(email) => {
            const partnerId = inviting.partnerId;
            setInviting(null);
            if (email) expect((read) => read.partners.some((p) => p.partnerId === partnerId && p.users.some((u) => u.email === email)));
          }}
        />
      ) : null}
      {deactivating ? (
        <Deactivate
          {...deactivating}
          onClose={(done) => {
            const { partner, user } = deactivating;
            setDeactivating(null);
            if (done) expect(userIs(partner.partnerId, user.userId, "DEACTIVATED"));
          }}
        />
      ) : null}
      {assigning ? (
        <Assign
          partner={assigning}
          onClose={(assigned) => {
            const { partnerId, customerCount } = assigning;
            setAssigning(null);
            if (assigned > 0) expect((read) => read.partners.some((p) => p.partnerId === partnerId && p.customerCount >= customerCount + assigned));
          }}
        />
      ) : null}
    </div>
  );
}

function NewPartner({ onAdded }: { onAdded: (name: string) => void }) {
  const session = useSession();
  const [name, setName] = useState("");
  const [state, setState] = useState<{ busy: boolean; error: CommandError | null; added: string | null }>({ busy: false, error: null, added: null });
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setState({ busy: true, error: null, added: null });
    try {
      await command(session, "POST", "/api/v1/partners", { name: name.trim() });
      setState({ busy: false, error: null, added: name.trim() });
      onAdded(name.trim());
      setName("");
    } catch (e) {
      setState({ busy: false, error: CommandError.from(e), added: null });
    }
  };
  return (
    <Form onSubmit={submit} className="cs-inline-form" aria-label="Register a partner organisation" style={{ maxWidth: "40rem" }}>
      <TextInput
        id="partner-name"
        labelText="Register a partner organisation: its name"
        value={name}
        onChange={(e) => setName(e.target.value)}
        invalid={Boolean(state.error?.field("name"))}
        invalidText={state.error?.field("name")}
      />
      <Button type="submit" disabled={state.busy || !name.trim()}>
        {state.busy ? "Registering…" : "Register"}
      </Button>
      {state.error && !state.error.field("name") ? <Refused error={state.error} /> : null}
      {state.added ? <InlineNotification kind="success" title={`${state.added} is registered`} hideCloseButton lowContrast role="status" /> : null}
    </Form>
  );
}

function Invite({ partner, onClose }: { partner: Organisation; onClose: (email: string | null) => void }) {
  const session = useSession();
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [state, setState] = useState<{ busy: boolean; error: CommandError | null }>({ busy: false, error: null });
  return (
    <Modal
      open
      modalHeading={`Invite a user to ${partner.name}`}
      primaryButtonText={state.busy ? "Inviting…" : "Invite"}
      primaryButtonDisabled={state.busy || !name.trim() || !email.trim()}
      secondaryButtonText="Cancel"
      onRequestClose={() => onClose(null)}
      onRequestSubmit={async () => {
        setState({ busy: true, error: null });
        try {
          await command(session, "POST", `/api/v1/partners/${partner.partnerId}/users`, { name: name.trim(), email: email.trim() });
          onClose(email.trim());
        } catch (e) {
          setState({ busy: false, error: CommandError.from(e) });
        }
      }}
    >
      <p className="cs-muted" style={{ marginBottom: "1rem" }}>
        The user is invited; they act on the partner portal once activated.
      </p>
      <TextInput id="invite-name" labelText="Name" value={name} onChange={(e) => setName(e.target.value)} invalid={Boolean(state.error?.field("name"))} invalidText={state.error?.field("name")} />
      <TextInput
        id="invite-email"
        labelText="E-mail"
        type="email"
        value={email}
        onChange={(e) => setEmail(e.target.value)}
        invalid={Boolean(state.error?.field("email"))}
        invalidText={state.error?.field("email")}
      />
      {state.error && !state.error.field("name") && !state.error.field("email") ? <Refused error={state.error} /> : null}
    </Modal>
  );
}

function Activate({ partner, user, onDone }: { partner: Organisation; user: PartnerUser; onDone: () => void }) {
  const session = useSession();
  const [state, setState] = useState<{ busy: boolean; error: CommandError | null }>({ busy: false, error: null });
  return (
    <>
      <Button
        kind="ghost"
        size="sm"
        disabled={state.busy}
        onClick={async () => {
          setState({ busy: true, error: null });
          try {
            await command(session, "POST", `/api/v1/partners/${partner.partnerId}/users/${encodeURIComponent(user.userId)}/activate`);
            setState({ busy: false, error: null });
            onDone();
          } catch (e) {
            setState({ busy: false, error: CommandError.from(e) });
          }
        }}
      >
        {user.status === "DEACTIVATED" ? "Reactivate" : "Activate"}
      </Button>
      {state.error ? <Refused error={state.error} /> : null}
    </>
  );
}

function Deactivate({ partner, user, onClose }: { partner: Organisation; user: PartnerUser; onClose: (done: boolean) => void }) {
  const session = useSession();
  const [reason, setReason] = useState("");
  const [state, setState] = useState<{ busy: boolean; error: CommandError | null }>({ busy: false, error: null });
  return (
    <Modal
      open
      danger
      modalHeading={`Deactivate ${user.name}?`}
      primaryButtonText={state.busy ? "Deactivating…" : "Deactivate"}
      primaryButtonDisabled={state.busy || !reason.trim()}
      secondaryButtonText="Cancel"
      onRequestClose={() => onClose(false)}
      onRequestSubmit={async () => {
        setState({ busy: true, error: null });
        try {
          await command(session, "POST", `/api/v1/partners/${partner.partnerId}/users/${encodeURIComponent(user.userId)}/deactivate`, { reason: reason.trim() });
          onClose(true);
        } catch (e) {
          setState({ busy: false, error: CommandError.from(e) });
        }
      }}
    >
      <p style={{ marginBottom: "1rem" }}>
        {user.name} of {partner.name} is refused from the next request on. What they submitted stays.
      </p>
      <TextArea id="deactivate-reason" labelText="Why (kept with the change)" value={reason} onChange={(e) => setReason(e.target.value)} invalid={Boolean(state.error?.field("reason"))} invalidText={state.error?.field("reason")} />
      {state.error && !state.error.field("reason") ? <Refused error={state.error} /> : null}
    </Modal>
  );
}

const CANDIDATES = graphql(`
  query AssignCandidates($search: String) {
    customers(filter: { search: $search }, first: 25) {
      totalCount
      nodes {
        customerId
        name
        tier
        partnerIds
      }
    }
  }
`);

/** Customers chosen by name, page by page of a search, then assigned at once (all or none). */
function Assign({ partner, onClose }: { partner: Organisation; onClose: (assigned: number) => void }) {
  const session = useSession();
  const [search, setSearch] = useState("");
  const [chosen, setChosen] = useState<Map<string, string>>(new Map());
  const [state, setState] = useState<{ busy: boolean; error: CommandError | null }>({ busy: false, error: null });
  const [{ data, fetching }] = useQuery({ query: CANDIDATES, variables: { search: search.trim() || null } });
  const toggle = (customerId: string, name: string, on: boolean) => {
    const next = new Map(chosen);
    if (on) next.set(customerId, name);
    else next.delete(customerId);
    setChosen(next);
  };
  const shown = data?.customers.nodes ?? [];
  return (
    <Modal
      open
      size="md"
      modalHeading={`Assign customers to ${partner.name}`}
      primaryButtonText={state.busy ? "Assigning…" : `Assign ${count(chosen.size, "customer", "customers")}`}
      primaryButtonDisabled={state.busy || chosen.size === 0}
      secondaryButtonText="Cancel"
      onRequestClose={() => onClose(0)}
      onRequestSubmit={async () => {
        setState({ busy: true, error: null });
        try {
          const answer = await command<{ assigned: number }>(session, "POST", `/api/v1/partners/${partner.partnerId}/customers`, { customer_ids: [...chosen.keys()] });
          onClose(answer.assigned);
        } catch (e) {
          setState({ busy: false, error: CommandError.from(e) });
        }
      }}
    >
      <p className="cs-muted" style={{ marginBottom: "1rem" }}>
        Find customers by name and tick them; the choice is kept while you search again. All are assigned together, or none. Customers already
        assigned stay as they are.
      </p>
      <Search id="assign-search" labelText="Find customers by name" placeholder="Part of the name" value={search} onChange={(e) => setSearch(e.target.value)} size="md" />
      <div role="group" aria-label="Customers found" style={{ margin: "1rem 0", maxHeight: "16rem", overflowY: "auto" }}>
        {fetching && !data ? <InlineLoading description="Searching" /> : null}
        {shown.map((customer) => {
          const already = customer.partnerIds.includes(partner.partnerId);
          return (
            <Checkbox
              key={customer.customerId}
              id={`assign-${customer.customerId}`}
              labelText={`${customer.name}${already ? " (already assigned)" : ""}`}
              disabled={already}
              checked={already || chosen.has(customer.customerId)}
              onChange={(_, { checked }) => toggle(customer.customerId, customer.name, checked)}
            />
          );
        })}
        {data ? (
          <p className="cs-muted" data-testid="assign-found">
            {data.customers.totalCount > shown.length
              ? `The first ${shown.length} of ${count(data.customers.totalCount, "match", "matches")}: type more of the name to narrow them.`
              : count(data.customers.totalCount, "match", "matches")}
          </p>
        ) : null}
      </div>
      {chosen.size > 0 ? (
        <p data-testid="assign-chosen">
          Chosen: {[...chosen.values()].slice(0, 10).join(", ")}
          {chosen.size > 10 ? ` and ${chosen.size - 10} more` : ""}
        </p>
      ) : null}
      {state.error ? <Refused error={state.error} /> : null}
    </Modal>
  );
}
