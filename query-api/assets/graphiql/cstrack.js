// Starts GraphiQL against this service's /graphql. Every request needs a bearer token: paste
// {"Authorization": "Bearer <token>"} into the Headers tab (the token is kept in this browser's
// local storage by GraphiQL, never sent anywhere else).
ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, {
    fetcher: GraphiQL.createFetcher({ url: new URL("/graphql", window.location.origin).toString() }),
    defaultEditorToolsVisibility: true,
    defaultHeaders: '{\n  "Authorization": "Bearer <token>"\n}',
    shouldPersistHeaders: true,
  })
);
