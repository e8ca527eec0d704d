import { createContext, lazy, Suspense, useCallback, useContext, useMemo, useState } from "react";
import { Navigate, Route, Routes, useLocation, useNavigate, Link as RouterLink } from "react-router-dom";
import {
  Header,
  HeaderGlobalBar,
  HeaderMenuButton,
  HeaderName,
  SideNav,
  SideNavItems,
  SideNavLink,
  SkipToContent,
  Content,
  Button,
  Loading,
} from "@carbon/react";
import { Provider, useQuery } from "urql";
import { graphql } from "./gql";
import { graphqlClient } from "./api/client";
import { can, clearSession, loadSession, saveSession, type Session } from "./api/session";
import { SignIn, Callback } from "./views/SignIn";
import { LagIndicator } from "./views/Lag";
import { OfflineIndicator } from "./views/Offline";
import { forgetKeptAnswers } from "./offline";
import { useOwnTimeZone } from "./book";

const Dashboard = lazy(() => import("./views/Dashboard"));
const Coverage = lazy(() => import("./views/Coverage"));
const Engagement = lazy(() => import("./views/Engagement"));
const Customers = lazy(() => import("./views/Customers"));
const Customer360 = lazy(() => import("./views/Customer360"));
const Workload = lazy(() => import("./views/Workload"));
const Alerts = lazy(() => import("./views/Alerts"));
const Tasks = lazy(() => import("./views/Tasks"));
const PartnerReports = lazy(() => import("./views/PartnerReports"));
const History = lazy(() => import("./views/History"));
const Imports = lazy(() => import("./views/Imports"));
const Settings = lazy(() => import("./views/Settings"));
const Renewals = lazy(() => import("./views/Renewals"));
const AtRisk = lazy(() => import("./views/AtRisk"));
const Touches = lazy(() => import("./views/Touches"));
const Reminders = lazy(() => import("./views/Reminders"));
const Today = lazy(() => import("./views/Today"));
const Playbooks = lazy(() => import("./views/Playbooks"));

interface SessionContext {
  session: Session;
  signOut: () => void;
}

const SessionContext = createContext<SessionContext | null>(null);

export function useSession(): Session {
  const context = useContext(SessionContext);
  if (!context) throw new Error("useSession outside a signed-in page");
  return context.session;
}

interface NavItem {
  path: string;
  label: string;
  show: (session: Session) => boolean;
}

const NAV: NavItem[] = [
  { path: "/today", label: "Today", show: (s) => can.portfolio(s.role) },
  { path: "/", label: "Dashboard", show: (s) => can.portfolio(s.role) },
  { path: "/coverage", label: "Coverage", show: (s) => can.portfolio(s.role) },
  { path: "/engagement", label: "Engagement", show: (s) => can.portfolio(s.role) },
  { path: "/customers", label: "Customers", show: () => true },
  { path: "/focus", label: "My focus", show: () => true },
  { path: "/renewals", label: "Renewals", show: () => true },
  { path: "/touches", label: "Next touches", show: (s) => can.portfolio(s.role) },
  { path: "/at-risk", label: "At risk", show: (s) => can.portfolio(s.role) },
  { path: "/workload", label: "CSM workload", show: (s) => can.portfolio(s.role) },
  { path: "/reminders", label: "Reminders", show: (s) => can.portfolio(s.role) },
  { path: "/playbooks", label: "Playbooks", show: (s) => can.portfolio(s.role) },
  { path: "/alerts", label: "Alerts", show: () => true },
  { path: "/tasks", label: "Tasks", show: (s) => s.role !== "auditor" },
  { path: "/partner-reports", label: "Partner reports", show: (s) => can.partnerReports(s.role) },
  { path: "/history", label: "History (audit)", show: (s) => can.history(s.role) },
  { path: "/imports", label: "Imports", show: (s) => can.record(s.role) },
  { path: "/settings", label: "Settings", show: (s) => s.role !== "partner" },
];

export function App() {
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const navigate = useNavigate();
  const location = useLocation();
  const signIn = useCallback(
    (next: Session, returnTo: string) => {
      saveSession(next);
      setSession(next);
      // A CSM lands on their "today"; managers and the others on the portfolio.
      navigate(returnTo || (next.role === "csm" ? "/today" : "/"), { replace: true });
    },
    [navigate],
  );
  const signOut = useCallback(() => {
    forgetKeptAnswers();
    clearSession();
    setSession(null);
    navigate("/sign-in", { replace: true });
  }, [navigate]);
  const client = useMemo(() => (session ? graphqlClient(session, signOut) : null), [session, signOut]);

  if (location.pathname === "/callback") return <Callback onSignedIn={signIn} />;
  if (!session || !client) {
    return (
      <Routes>
        <Route path="/sign-in" element={<SignIn onSignedIn={signIn} />} />
        <Route
          path="*"
          element={
            <Navigate
              to={location.pathname === "/" && !location.search ? "/sign-in" : `/sign-in?returnTo=${encodeURIComponent(location.pathname + location.search)}`}
              replace
            />
          }
        />
      </Routes>
    );
  }
  return (
    <SessionContext.Provider value={{ session, signOut }}>
      <Provider value={client}>
        <Shell session={session} signOut={signOut} />
      </Provider>
    </SessionContext.Provider>
  );
}

function Shell({ session, signOut }: { session: Session; signOut: () => void }) {
  const [navOpen, setNavOpen] = useState(false);
  const location = useLocation();
  // Times are shown in the user's chosen zone; the views are drawn again when it is learnt.
  const zone = useOwnTimeZone(session);
  const items = NAV.filter((item) => item.show(session));
  const home = session.role === "csm" ? "/today" : can.portfolio(session.role) ? "/" : "/customers";
  const current = (path: string) =>
    path === "/" ? location.pathname === "/" : location.pathname === path || location.pathname.startsWith(`${path}/`);
  return (
    <>
      <Header aria-label="cstrack">
        <SkipToContent />
        <HeaderMenuButton
          aria-label={navOpen ? "Close menu" : "Open menu"}
          isActive={navOpen}
          onClick={() => setNavOpen(!navOpen)}
          aria-expanded={navOpen}
        />
        <HeaderName as={RouterLink} to={home} prefix="cstrack">
          Customer success
        </HeaderName>
        <HeaderGlobalBar>
          <OfflineIndicator session={session} />
          {can.portfolio(session.role) ? <LagIndicator /> : null}
          <SignedInAs session={session} />
          <Button kind="ghost" size="sm" onClick={signOut} className="cs-header-action">
            Sign out
          </Button>
        </HeaderGlobalBar>
        <SideNav aria-label="Views" expanded={navOpen} onSideNavBlur={() => setNavOpen(false)} href="#main-content">
          <SideNavItems>
            {items.map((item) => (
              <SideNavLink
                key={item.path}
                as={RouterLink}
                to={item.path}
                isActive={current(item.path)}
                aria-current={current(item.path) ? "page" : undefined}
                onClick={() => setNavOpen(false)}
              >
                {item.label}
              </SideNavLink>
            ))}
          </SideNavItems>
        </SideNav>
      </Header>
      <Content id="main-content" className="cs-content" tabIndex={-1} key={zone ?? "device"}>
        <Suspense fallback={<Loading withOverlay={false} description="Loading the view" />}>
          <Routes>
            <Route path="/" element={can.portfolio(session.role) ? <Dashboard /> : <Navigate to="/customers" replace />} />
            <Route path="/coverage" element={<Portfolio><Coverage /></Portfolio>} />
            <Route path="/engagement" element={<Portfolio><Engagement /></Portfolio>} />
            <Route path="/workload" element={<Portfolio><Workload /></Portfolio>} />
            <Route path="/customers" element={<Customers />} />
            <Route path="/focus" element={<Navigate to="/customers?focus=1" replace />} />
            <Route path="/customers/:customerId" element={<Customer360 />} />
            <Route path="/renewals" element={<Renewals />} />
            <Route path="/at-risk" element={<Portfolio><AtRisk /></Portfolio>} />
            <Route path="/touches" element={<Portfolio><Touches /></Portfolio>} />
            <Route path="/reminders" element={<Portfolio><Reminders /></Portfolio>} />
            <Route path="/today" element={<Portfolio><Today /></Portfolio>} />
            <Route path="/playbooks" element={<Portfolio><Playbooks /></Portfolio>} />
            <Route path="/alerts" element={<Alerts />} />
            <Route path="/tasks" element={<Tasks />} />
            <Route path="/partner-reports" element={<PartnerReports />} />
            <Route path="/history" element={<History />} />
            <Route path="/history/:customerId" element={<History />} />
            <Route path="/imports" element={can.record(session.role) ? <Imports /> : <Navigate to={home} replace />} />
            <Route path="/settings" element={session.role !== "partner" ? <Settings /> : <Navigate to={home} replace />} />
            <Route path="/sign-in" element={<Navigate to={home} replace />} />
            <Route path="*" element={<p>There is no such page. <RouterLink to={home}>Go home</RouterLink>.</p>} />
          </Routes>
        </Suspense>
      </Content>
    </>
  );
}

/** Portfolio reports: not for partners (the API refuses them too). */
function Portfolio({ children }: { children: React.ReactNode }) {
  const session = useSession();
  return can.portfolio(session.role) ? <>{children}</> : <Navigate to="/customers" replace />;
}

const ME = graphql(`
  query Me {
    me {
      name
      partnerName
    }
  }
`);

const ROLE_WORDS: Record<string, string> = {
  admin: "admin",
  manager: "manager",
  csm: "CSM",
  partner: "partner",
  readonly: "read only",
  auditor: "auditor",
};

/** Who is signed in: their name where the directory knows it (else their user id), and their role in words. */
function SignedInAs({ session }: { session: Session }) {
  const [{ data }] = useQuery({ query: ME });
  const name = data?.me.name ?? session.user;
  const role = session.role === "partner" && data?.me.partnerName ? `partner, ${data.me.partnerName}` : (ROLE_WORDS[session.role] ?? session.role);
  return (
    <span className="cs-header-user" data-testid="signed-in-as">
      {name} ({role})
    </span>
  );
}
