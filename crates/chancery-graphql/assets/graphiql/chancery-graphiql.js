/*
 * Chancery's GraphiQL bootstrap (MIT, part of Chancery; not vendored code).
 *
 * Kept out of index.html so a Content-Security-Policy can say script-src 'self'.
 * Talks to the same origin only:
 *   HTTP          POST /graphql
 *   subscriptions /graphql/ws  (graphql-transport-ws, via the graphql-ws client bundled in graphiql.min.js)
 * Optional bearer token: localStorage 'chancery-token'. It is read again for every operation,
 * so setting or clearing it takes effect without a reload:
 *   localStorage.setItem('chancery-token', '<token>')
 */
(function () {
  'use strict';

  var TOKEN_KEY = 'chancery-token';
  var loc = window.location;
  var httpUrl = loc.protocol + '//' + loc.host + '/graphql';
  var wsUrl = (loc.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + loc.host + '/graphql/ws';

  function readToken() {
    try {
      var token = window.localStorage.getItem(TOKEN_KEY);
      token = token ? token.trim() : '';
      return token || null;
    } catch (e) {
      return null; // storage disabled: no token
    }
  }

  // createFetcher is createGraphiQLFetcher from @graphiql/toolkit, exposed by the GraphiQL UMD bundle.
  function makeFetcher() {
    var token = readToken();
    var options = { url: httpUrl, subscriptionUrl: wsUrl };
    if (token) {
      options.headers = { Authorization: 'Bearer ' + token };
      options.wsConnectionParams = { authorization: 'Bearer ' + token };
    }
    return window.GraphiQL.createFetcher(options);
  }

  function fetcher(graphQLParams, fetcherOpts) {
    return makeFetcher()(graphQLParams, fetcherOpts);
  }

  var defaultQuery = [
    '# Chancery GraphiQL',
    '#',
    '# Queries and mutations: POST /graphql',
    '# Subscriptions: /graphql/ws',
    '#   (graphql-transport-ws)',
    '#',
    '# To send a bearer token, run in the console:',
    '#   localStorage.setItem(',
    "#     '" + TOKEN_KEY + "', '<token>')",
    '# It goes out as an Authorization header',
    '# and in the WebSocket connection_init.',
    '',
    '{',
    '  __typename',
    '}',
    ''
  ].join('\n');

  var container = document.getElementById('graphiql');
  container.textContent = '';
  window.ReactDOM.createRoot(container).render(
    window.React.createElement(window.GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery
    })
  );
})();
