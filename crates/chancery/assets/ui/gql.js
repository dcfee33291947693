// GraphQL over HTTP (POST /graphql, same origin) and the page's queries.

const TOKEN_KEY = 'chancery-token'; // the same key GraphiQL reads

export function token() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(value) {
  try {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage refused (private mode): the token lasts for this page only
  }
}

/** A GraphQL answer with errors: the first error's message, with its code. */
export class ApiError extends Error {
  constructor(errors, status) {
    const first = errors?.[0] ?? {};
    super(first.message || `the server answered ${status}`);
    this.code = first.extensions?.code || (status === 401 ? 'UNAUTHORIZED' : 'ERROR');
    this.status = status;
    this.errors = errors;
  }
}

/** Runs a query or mutation; answers its `data`, throws ApiError or a network error. */
export async function gql(query, variables = {}, { signal } = {}) {
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
  const t = token();
  if (t) headers.authorization = `Bearer ${t}`;
  const response = await fetch('/graphql', {
    method: 'POST', headers, body: JSON.stringify({ query, variables }), signal, credentials: 'omit', cache: 'no-store',
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(null, response.status);
  }
  if (body.errors?.length) throw new ApiError(body.errors, response.status);
  if (!response.ok) throw new ApiError(null, response.status);
  return body.data;
}

/** Every field the page shows of an event. */
export const EVENT_FIELDS = `
fragment Ev on Event {
  id position version kind cursor retracted corrected recordedAt recordedBy hash
  timeline { slug }
  content {
    occurred { start end precision modality }
    actors { party { code name } actor { slug name role } }
    targets { party { code name } actor { slug name role } }
    issues { slug title }
    amounts { value unit measures }
    location summary confidence
    sources { publication title url published attribution quote }
    codes { cameo cameoLabel ploverType ploverMode quadClass goldstein tableVersion }
    payload {
      __typename
      ... on OfferPayload { terms conditions reaffirms }
      ... on DemandPayload { terms demandType deadline reaffirms }
      ... on ThreatPayload { terms instrument condition deadline }
      ... on RefusalPayload { terms of refuses }
      ... on ConcessionPayload { terms concessionType answers }
      ... on AgreementPayload { terms form }
      ... on MeasurePayload { terms instrument action announced effective ratePercent }
      ... on StatementPayload { claim tone }
      ... on AccusationPayload { claim form }
      ... on SeminarPayload { host days participants topic }
      ... on VisitPayload { visitor host place purpose }
      ... on TalksPayload { participants place format rounds }
      ... on RetractionPayload { retracts reason }
      ... on CorrectionPayload { corrects reason changedFields }
      ... on PartyRegisteredPayload { code name partyKind }
      ... on IssueRegisteredPayload { slug title }
      ... on TimelineRegisteredPayload { slug title }
    }
  }
}`;

export const REGISTRY = `query Registry {
  head { position }
  timelines { slug title description version }
  parties { code name kind }
  actors { slug name role party { code } }
  issues { slug title description }
}`;

export const EVENTS_PAGE = `query Events($filter: EventFilterInput, $after: String) {
  events(filter: $filter, order: LOG, first: 500, after: $after) {
    edges { node { ...Ev } }
    pageInfo { hasNextPage endCursor }
  }
}
${EVENT_FIELDS}`;

export const ONE_EVENT = `query Event($id: ID!, $atLeast: Long) { event(id: $id, atLeast: $atLeast) { ...Ev } }
${EVENT_FIELDS}`;

export const EVENTS_SUBSCRIPTION = `subscription Live($filter: EventFilterInput, $after: String) {
  events(filter: $filter, after: $after) { ...Ev }
}
${EVENT_FIELDS}`;

export const POSITIONS = `query Positions($timeline: Slug, $parties: [PartyCode!]!, $issues: [Slug!]!, $asOf: AsOfInput, $atLeast: Long) {
  positions(timeline: $timeline, parties: $parties, issues: $issues, asOf: $asOf, atLeast: $atLeast) {
    party { code name } issue { slug title } stance
    event { id kind content { summary } }
    firstStated lastReaffirmed reaffirmed conditions attribution confidence
  }
  standoffs(timeline: $timeline, issues: $issues, asOf: $asOf, atLeast: $atLeast) {
    issue { slug title } status sides { party { code } stance event }
  }
}`;

export const RELATIONS = `query Relations($a: PartyCode!, $b: PartyCode!, $bucket: Bucket!, $timeline: Slug, $asOf: AsOfInput, $atLeast: Long) {
  relations(a: $a, b: $b, bucket: $bucket, timeline: $timeline, asOf: $asOf, atLeast: $atLeast) {
    bucket
    buckets { start events verbalCooperation materialCooperation verbalConflict materialConflict goldsteinSum goldsteinMean }
    total { events goldsteinSum goldsteinMean }
  }
}`;

/** What the page asks of an append: the new events, and whether a retry found them recorded. */
const APPENDED = 'events { id position version } timelineVersion deduplicated';

export const RECORD_EVENT = `mutation RecordEvent($timeline: Slug!, $event: EventInput!) {
  recordEvent(timeline: $timeline, event: $event) { ${APPENDED} }
}`;

export const CORRECT_EVENT = `mutation CorrectEvent($input: CorrectInput!, $expectedVersion: ExpectedVersionInput) {
  correctEvent(input: $input, expectedVersion: $expectedVersion) { ${APPENDED} }
}`;

export const RETRACT_EVENT = `mutation RetractEvent($input: RetractInput!, $expectedVersion: ExpectedVersionInput) {
  retractEvent(input: $input, expectedVersion: $expectedVersion) { ${APPENDED} }
}`;

export const REGISTER = {
  timeline: `mutation RegisterTimeline($input: RegisterTimelineInput!) { registerTimeline(input: $input) { ${APPENDED} } }`,
  party: `mutation RegisterParty($input: RegisterPartyInput!) { registerParty(input: $input) { ${APPENDED} } }`,
  actor: `mutation RegisterActor($input: RegisterActorInput!) { registerActor(input: $input) { ${APPENDED} } }`,
  issue: `mutation RegisterIssue($input: RegisterIssueInput!) { registerIssue(input: $input) { ${APPENDED} } }`,
};

export const TIMELINE_VERSION = `query TimelineVersion($slug: Slug!) { timeline(slug: $slug) { version } }`;

/** An event as the log held it at a position: what a correction changed, before and after. */
export const EVENT_KNOWN_AT = `query EventKnownAt($id: ID!, $knownAt: Long!) { event(id: $id, asOf: { knownAt: $knownAt }) { ...Ev } }
${EVENT_FIELDS}`;
