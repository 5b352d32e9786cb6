// The conversations rendered into tests/data/chat_render_golden.json. Each request is an OpenAI
// chat-completions style body: {messages, tools?, think?}. `think` maps to the template's
// enable_thinking (absent: not passed at all). Order and names are part of the golden file.

const WEATHER = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the current weather for a city",
    parameters: {
      type: "object",
      properties: {
        city: { type: "string", description: "City name" },
        days: { type: "integer", description: "Number of forecast days" },
        unit: { type: "string", description: "Temperature unit", enum: ["celsius", "fahrenheit"] },
      },
      required: ["city"],
    },
  },
};

const FLIGHTS = {
  type: "function",
  function: {
    name: "search_flights",
    description: "Search for flights",
    parameters: {
      type: "object",
      properties: {
        origin: { type: "string", description: "IATA code of the departure airport" },
        passengers: {
          type: "object",
          description: "Passenger counts",
          properties: {
            adults: { type: "integer", description: "Adults (12+)" },
            children: { type: "integer", nullable: true },
          },
          required: ["adults"],
        },
        stops: {
          type: "array",
          description: "Acceptable numbers of stops",
          items: { type: "string", enum: ["none", "one", "two"] },
        },
        legs: {
          type: "array",
          items: {
            type: "object",
            properties: {
              from: { type: "string" },
              to: { type: "string" },
              date: { type: "string", description: "ISO 8601 date" },
            },
            required: ["from", "to"],
          },
        },
        max_price: { type: "number", description: "Upper price limit", nullable: true },
        flexible: { type: "boolean" },
      },
      required: ["origin", "passengers"],
    },
  },
};

const GET_TIME = {
  type: "function",
  function: { name: "get_time", description: "Current UTC time" },
};

const LIST_FILES = {
  type: "function",
  function: {
    name: "list_files",
    description: "List the files in the working directory",
    parameters: { type: "object", properties: {} },
  },
};

const call = (id, name, args) => ({
  id,
  type: "function",
  function: { name, arguments: typeof args === "string" ? args : JSON.stringify(args) },
});

const U = (content) => ({ role: "user", content });
const A = (content) => ({ role: "assistant", content });
const S = (content) => ({ role: "system", content });

export const CASES = [
  // ---- plain turns, system handling ------------------------------------------------------
  { name: "plain_user", request: { messages: [U("Hi")] } },
  { name: "system_user", request: { messages: [S("Be brief."), U("Hi")] } },
  { name: "developer_instead_of_system", request: { messages: [{ role: "developer", content: "Be brief." }, U("Hi")] } },
  {
    name: "several_leading_systems",
    request: {
      messages: [
        S("You are Hearth."),
        { role: "developer", content: "  Answer in French.  " },
        S([{ type: "text", text: "Use " }, { type: "text", text: "metric units." }]),
        U("Hi"),
      ],
    },
  },
  { name: "system_in_middle", request: { messages: [S("Be brief."), U("Hi"), A("Hello!"), S("Now answer in German."), U("Bye")] } },
  { name: "developer_in_middle", request: { messages: [U("Hi"), A("Hello!"), { role: "developer", content: "Be formal." }, U("Bye")] } },

  // ---- thinking ----------------------------------------------------------------------------
  { name: "think_on_no_system", request: { messages: [U("Hi")], think: true } },
  { name: "think_on_with_system", request: { messages: [S("Be brief."), U("Hi")], think: true } },
  { name: "think_off_no_system", request: { messages: [U("Hi")], think: false } },
  { name: "think_off_with_system", request: { messages: [S("Be brief."), U("Hi")], think: false } },

  // ---- multi-turn, stripping, same-role runs -------------------------------------------------
  { name: "multi_turn", request: { messages: [U("Hi"), A("Hello!"), U("Bye")] } },
  {
    name: "assistant_thought_channel_stripped",
    request: { messages: [U("Hi"), A("<|channel>thought\nThe user greets me.<channel|>Hello!"), U("Bye")] },
  },
  {
    name: "assistant_thought_channel_stripped_think_on",
    request: {
      messages: [S("Be brief."), U("Hi"), A("<|channel>thought\nThe user greets me.<channel|>Hello!"), U("Bye")],
      think: true,
    },
  },
  {
    name: "assistant_two_thought_channels",
    request: {
      messages: [U("Hi"), A("<|channel>thought\nfirst<channel|>Hello <|channel>thought\nsecond<channel|> there!"), U("Bye")],
    },
  },
  { name: "consecutive_users", request: { messages: [U("A"), U("B")] } },
  { name: "consecutive_assistants", request: { messages: [U("Hi"), A("Hello!"), A("How can I help?"), U("Bye")] } },

  // ---- content shapes ------------------------------------------------------------------------
  {
    name: "content_text_parts",
    request: { messages: [U([{ type: "text", text: "Hello " }, { type: "text", text: "world" }])] },
  },
  {
    name: "content_image_part",
    request: {
      messages: [
        U([
          { type: "text", text: "What is in this picture?" },
          { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
        ]),
      ],
    },
  },
  {
    name: "content_image_first_and_audio",
    request: {
      messages: [
        U([
          { type: "image_url", image_url: { url: "data:image/jpeg;base64,/9j/4AAQ" } },
          { type: "text", text: "Describe the image, then transcribe:" },
          { type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } },
        ]),
      ],
    },
  },
  {
    name: "assistant_content_parts_with_thought",
    request: {
      messages: [
        U("Hi"),
        A([{ type: "text", text: "<|channel>thought\nhmm<channel|>Hello" }, { type: "text", text: " again!" }]),
        U("Bye"),
      ],
    },
  },
  { name: "empty_string_content", request: { messages: [U(""), A(""), U("Hi")] } },
  { name: "null_content", request: { messages: [U(null), A(null), U("Hi")] } },
  {
    name: "whitespace_trimmed",
    request: { messages: [S("\n  Be brief.  \n"), U("  \n Hi there \n\n "), A("  Sure thing.\n\n"), U("\tBye\t")] },
  },
  {
    name: "unicode_content",
    request: { messages: [U("Grüße aus Köln! 你好，世界 🌍🔥 — «ça va?» שלום"), A("Ça va bien 😊 — 谢谢!"), U("Ἀθῆναι ∑ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢")] },
  },

  // ---- tool declarations ---------------------------------------------------------------------
  {
    name: "tools_declared",
    request: { messages: [U("What's the weather in Paris?")], tools: [WEATHER, FLIGHTS, GET_TIME, LIST_FILES] },
  },
  {
    name: "tools_declared_with_system_think_on",
    request: { messages: [S("You are a travel agent."), U("Find me a flight.")], tools: [FLIGHTS, WEATHER], think: true },
  },
  {
    name: "tool_without_parameters_only",
    request: { messages: [U("What time is it?")], tools: [GET_TIME] },
  },
  {
    name: "tool_param_nested_object_without_description",
    request: {
      messages: [U("Book it.")],
      tools: [
        {
          type: "function",
          function: {
            name: "book",
            description: "Book a trip",
            parameters: {
              type: "object",
              properties: {
                traveller: {
                  type: "object",
                  properties: { name: { type: "string" }, age: { type: "integer" } },
                  required: ["name"],
                },
                tags: { type: "array", items: { type: "string" } },
              },
              required: ["traveller"],
            },
          },
        },
      ],
    },
  },
  {
    name: "tool_param_named_description",
    request: {
      messages: [U("File a bug.")],
      tools: [
        {
          type: "function",
          function: {
            name: "create_issue",
            description: "Create an issue",
            parameters: {
              type: "object",
              properties: {
                title: { type: "string", description: "Issue title" },
                description: { type: "string", description: "Issue body" },
                type: { type: "string", enum: ["bug", "feature"] },
              },
              required: ["title", "description"],
            },
          },
        },
      ],
    },
  },
  {
    name: "tool_param_array_items_type_list",
    request: {
      messages: [U("Sum these.")],
      tools: [
        {
          type: "function",
          function: {
            name: "sum",
            description: "Add numbers",
            parameters: {
              type: "object",
              properties: { values: { type: "array", description: "Numbers", items: { type: ["number", "null"] } } },
              required: ["values"],
            },
          },
        },
      ],
    },
  },

  // ---- tool calls and results ------------------------------------------------------------------
  {
    name: "tool_call_then_result",
    request: {
      messages: [
        U("What's the weather in Paris?"),
        { role: "assistant", content: null, tool_calls: [call("call_1", "get_weather", { city: "Paris", days: 2 })] },
        { role: "tool", tool_call_id: "call_1", content: '{"temp": 21, "sky": "clear"}' },
      ],
      tools: [WEATHER],
    },
  },
  {
    name: "parallel_tool_calls_two_results",
    request: {
      messages: [
        U("Weather in Paris and Tokyo?"),
        {
          role: "assistant",
          content: null,
          tool_calls: [call("call_a", "get_weather", { city: "Paris" }), call("call_b", "get_weather", { city: "Tokyo", unit: "celsius" })],
        },
        { role: "tool", tool_call_id: "call_a", content: '{"temp": 21}' },
        { role: "tool", tool_call_id: "call_b", content: '{"temp": 28}' },
      ],
      tools: [WEATHER],
    },
  },
  {
    name: "tool_results_out_of_order_by_id",
    request: {
      messages: [
        U("Time and weather?"),
        { role: "assistant", tool_calls: [call("c1", "get_time", {}), call("c2", "get_weather", { city: "Oslo" })] },
        { role: "tool", tool_call_id: "c2", content: '{"temp": -3}' },
        { role: "tool", tool_call_id: "c1", content: "12:00" },
      ],
      tools: [WEATHER, GET_TIME],
    },
  },
  {
    name: "tool_result_with_name_only",
    request: {
      messages: [
        U("What time is it?"),
        { role: "assistant", content: null, tool_calls: [call("call_9", "get_time", {})] },
        { role: "tool", name: "get_time", content: "2026-01-01T12:00:00Z" },
      ],
      tools: [GET_TIME],
    },
  },
  {
    name: "tool_result_without_id_or_name",
    request: {
      messages: [
        U("Weather in Rome and the time?"),
        { role: "assistant", content: null, tool_calls: [call("x1", "get_weather", { city: "Rome" }), call("x2", "get_time", {})] },
        { role: "tool", content: '{"temp": 25}' },
        { role: "tool", content: "09:30" },
      ],
      tools: [WEATHER, GET_TIME],
    },
  },
  {
    name: "tool_result_unmatched_is_unknown",
    request: {
      messages: [
        U("Weather in Rome?"),
        { role: "assistant", content: null, tool_calls: [call("x1", "get_weather", { city: "Rome" })] },
        { role: "tool", tool_call_id: "x1", content: '{"temp": 25}' },
        { role: "tool", tool_call_id: "nope", content: "stray result" },
      ],
      tools: [WEATHER],
    },
  },
  {
    name: "tool_result_after_user_without_call",
    request: {
      messages: [U("Here is a tool result for you."), { role: "tool", name: "get_time", content: "12:00" }, U("What time was it?")],
    },
  },
  {
    name: "tool_result_json_object_string",
    request: {
      messages: [
        U("Look up the order."),
        { role: "assistant", content: null, tool_calls: [call("o1", "get_order", { id: 42 })] },
        {
          role: "tool",
          tool_call_id: "o1",
          content: '{"id": 42, "status": "shipped", "Items": [{"sku": "A-1", "qty": 2}], "note": "Leave at \\"door\\"", "gift": false, "eta": null}',
        },
      ],
    },
  },
  {
    name: "tool_result_plain_string",
    request: {
      messages: [
        U("Read the file."),
        { role: "assistant", content: null, tool_calls: [call("r1", "read_file", { path: "notes.txt" })] },
        { role: "tool", tool_call_id: "r1", content: "line one\nline \"two\"" },
      ],
    },
  },
  {
    name: "tool_result_json_array",
    request: {
      messages: [
        U("List files."),
        { role: "assistant", content: null, tool_calls: [call("l1", "list_files", {})] },
        { role: "tool", tool_call_id: "l1", content: '["a.txt", "b.md", 3, true]' },
      ],
      tools: [LIST_FILES],
    },
  },
  {
    name: "tool_result_number",
    request: {
      messages: [
        U("Count them."),
        { role: "assistant", content: null, tool_calls: [call("n1", "count", {})] },
        { role: "tool", tool_call_id: "n1", content: "42" },
      ],
    },
  },
  {
    name: "tool_result_content_parts",
    request: {
      messages: [
        U("Weather?"),
        { role: "assistant", content: null, tool_calls: [call("p1", "get_weather", { city: "Lima" })] },
        { role: "tool", tool_call_id: "p1", content: [{ type: "text", text: '{"temp": ' }, { type: "text", text: "19}" }] },
      ],
      tools: [WEATHER],
    },
  },
  {
    name: "full_round_trip",
    request: {
      messages: [
        S("You are a helpful assistant."),
        U("Weather in Paris and Tokyo?"),
        {
          role: "assistant",
          content: "",
          tool_calls: [call("call_a", "get_weather", { city: "Paris" }), call("call_b", "get_weather", { city: "Tokyo" })],
        },
        { role: "tool", tool_call_id: "call_a", content: '{"temp": 21, "sky": "clear"}' },
        { role: "tool", tool_call_id: "call_b", content: '{"temp": 28, "sky": "rain"}' },
        A("Paris: 21°C and clear. Tokyo: 28°C and rainy."),
        U("Thanks! And tomorrow?"),
      ],
      tools: [WEATHER],
    },
  },
  {
    name: "full_round_trip_think_on",
    request: {
      messages: [
        S("You are a helpful assistant."),
        U("Weather in Paris?"),
        { role: "assistant", content: null, tool_calls: [call("call_a", "get_weather", { city: "Paris" })] },
        { role: "tool", tool_call_id: "call_a", content: '{"temp": 21}' },
        A("<|channel>thought\nIt is mild.<channel|>It is 21°C in Paris."),
        U("Thanks!"),
      ],
      tools: [WEATHER],
      think: true,
    },
  },
  {
    name: "two_tool_rounds",
    request: {
      messages: [
        U("Plan a trip to Oslo."),
        { role: "assistant", content: null, tool_calls: [call("t1", "get_weather", { city: "Oslo" })] },
        { role: "tool", tool_call_id: "t1", content: '{"temp": -3}' },
        { role: "assistant", content: null, tool_calls: [call("t2", "search_flights", { origin: "CDG", passengers: { adults: 1 } })] },
        { role: "tool", tool_call_id: "t2", content: '{"flights": []}' },
        A("It is cold and there are no flights."),
        U("Ok."),
      ],
      tools: [WEATHER, FLIGHTS],
    },
  },
  {
    name: "tool_result_last_think_on",
    request: {
      messages: [
        U("Weather in Paris?"),
        { role: "assistant", content: null, tool_calls: [call("call_1", "get_weather", { city: "Paris" })] },
        { role: "tool", tool_call_id: "call_1", content: '{"temp": 21}' },
      ],
      tools: [WEATHER],
      think: true,
    },
  },
  {
    name: "round_trip_ends_with_final_answer",
    request: {
      messages: [
        U("Weather in Paris?"),
        { role: "assistant", content: null, tool_calls: [call("call_1", "get_weather", { city: "Paris" })] },
        { role: "tool", tool_call_id: "call_1", content: '{"temp": 21}' },
        A("It is 21°C."),
      ],
      tools: [WEATHER],
    },
  },
  {
    name: "assistant_text_with_tool_calls_then_final",
    request: {
      messages: [
        U("Weather in Paris?"),
        { role: "assistant", content: "Let me check.", tool_calls: [call("call_1", "get_weather", { city: "Paris" })] },
        { role: "tool", tool_call_id: "call_1", content: '{"temp": 21}' },
        A("It is 21°C."),
        U("Thanks."),
      ],
      tools: [WEATHER],
    },
  },
  {
    name: "tool_call_arguments_complex",
    request: {
      messages: [
        U("Do the thing."),
        {
          role: "assistant",
          content: null,
          tool_calls: [
            call("k1", "do_thing", {
              text: 'She said "hi"\nthen left\t(tab) \\ backslash',
              emoji: "naïve café 🚀 日本語",
              count: 3,
              ratio: -0.25,
              big: 1234567890,
              enabled: true,
              disabled: false,
              missing: null,
              nested: { Zeta: [1, 2, { deep: "x" }], alpha: { beta: null, gamma: [] } },
              list: ["a", 1, false, null, [2.5, "b"], {}],
            }),
          ],
        },
        { role: "tool", tool_call_id: "k1", content: '{"ok": true}' },
      ],
    },
  },
  {
    name: "tool_call_arguments_not_json",
    request: {
      messages: [
        U("Run it."),
        { role: "assistant", content: null, tool_calls: [call("j1", "run", "not json {at all"), call("j2", "run", "[1, 2]")] },
        { role: "tool", tool_call_id: "j1", content: "done" },
        { role: "tool", tool_call_id: "j2", content: "done too" },
      ],
    },
  },
  {
    name: "tool_call_object_arguments_raw",
    request: {
      messages: [
        U("Weather in Paris?"),
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "c", type: "function", function: { name: "get_weather", arguments: { city: "Paris", days: 1 } } }],
        },
        U("Never mind."),
      ],
      tools: [WEATHER],
    },
  },
  {
    name: "tool_call_last_without_result",
    request: {
      messages: [
        U("Weather in Paris?"),
        { role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: "get_weather", arguments: { city: "Paris" } } }] },
      ],
      tools: [WEATHER],
    },
  },
];
