// cxx_workload.cpp - the C++ standard library under load: containers,
// strings, streams, exceptions, shared pointers, std::function and threads
// handing objects to each other (so blocks are freed by another thread than
// the one that allocated them).  Prints results that must not depend on the
// allocator: run with and without LD_PRELOAD=librtalloc.so and compared.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <iomanip>
#include <iostream>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <queue>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

struct Rng {
	uint64_t x;
	explicit Rng(uint64_t seed) : x(seed) {}
	uint32_t operator()()
	{
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		return static_cast<uint32_t>(x >> 33);
	}
};

// FNV-1a over anything printable: the results are compared as digests.
struct Digest {
	uint64_t h = 1469598103934665603ULL;
	void add(const std::string &s)
	{
		for (unsigned char c : s) {
			h ^= c;
			h *= 1099511628211ULL;
		}
	}
	void add(uint64_t v) { add(std::to_string(v)); }
	std::string hex() const
	{
		std::ostringstream o;
		o << std::hex << std::setw(16) << std::setfill('0') << h;
		return o.str();
	}
};

std::string word(Rng &r)
{
	static const char *const syl[] = {"ka", "lo", "mi", "ne", "ru", "sa", "to", "vu", "xe", "zo"};
	std::string w;
	unsigned n = 1 + r() % 6;
	for (unsigned i = 0; i < n; i++)
		w += syl[r() % 10];
	return w;
}

void containers()
{
	Rng r(1);
	std::vector<std::string> words;
	for (int i = 0; i < 200000; i++)
		words.push_back(word(r));
	std::map<std::string, int> freq;
	std::unordered_map<std::string, std::vector<int>> where;
	for (size_t i = 0; i < words.size(); i++) {
		freq[words[i]]++;
		where[words[i]].push_back(static_cast<int>(i));
	}
	std::set<std::string> uniq(words.begin(), words.end());
	std::unordered_set<std::string> uniq2(words.begin(), words.end());
	std::list<std::string> lst(words.begin(), words.begin() + 50000);
	lst.sort();
	lst.unique();
	std::deque<int> dq;
	for (int i = 0; i < 300000; i++) {
		if (i % 3 == 2)
			dq.pop_front();
		dq.push_back(i);
	}
	std::priority_queue<uint32_t> pq;
	for (int i = 0; i < 100000; i++)
		pq.push(r());
	uint64_t top = 0;
	for (int i = 0; i < 1000; i++) {
		top += pq.top();
		pq.pop();
	}
	std::sort(words.begin(), words.end(), [](const std::string &a, const std::string &b) {
		return a.size() != b.size() ? a.size() < b.size() : a < b;
	});
	Digest d;
	for (auto &kv : freq) {
		d.add(kv.first);
		d.add(static_cast<uint64_t>(kv.second));
	}
	for (size_t i = 0; i < words.size(); i += 1000)
		d.add(words[i]);
	size_t positions = 0;
	for (auto &kv : where)
		positions += kv.second.size();
	std::cout << "containers: " << freq.size() << " distinct, " << uniq.size() << "/" << uniq2.size()
		  << ", list " << lst.size() << ", deque " << dq.size() << " front " << dq.front() << ", top "
		  << top << ", positions " << positions << ", digest " << d.hex() << "\n";
}

void strings()
{
	Rng r(2);
	std::string big;
	for (int i = 0; i < 100000; i++) {
		big += word(r);
		big += (i % 10 == 9) ? '\n' : ' ';
	}
	std::istringstream in(big);
	std::string line;
	size_t lines = 0, tokens = 0;
	std::ostringstream out;
	while (std::getline(in, line)) {
		lines++;
		std::istringstream ls(line);
		std::string tok;
		while (ls >> tok) {
			tokens++;
			std::reverse(tok.begin(), tok.end());
			out << tok << ',';
		}
	}
	std::string s = out.str();
	size_t pos = 0, hits = 0;
	while ((pos = s.find("akol", pos)) != std::string::npos) {
		hits++;
		s.replace(pos, 4, "AKOLAKOL");
		pos += 8;
	}
	std::regex re("(ka|zo)(mi|ne)+");
	size_t matches = 0;
	std::string sample = big.substr(0, 200000);
	for (auto it = std::sregex_iterator(sample.begin(), sample.end(), re); it != std::sregex_iterator(); ++it)
		matches++;
	Digest d;
	d.add(s);
	std::cout << "strings: " << big.size() << " bytes, " << lines << " lines, " << tokens << " tokens, "
		  << hits << " replaced, " << matches << " regex matches, digest " << d.hex() << "\n";
}

struct ParseError : std::runtime_error {
	int at;
	ParseError(const std::string &what, int pos) : std::runtime_error(what), at(pos) {}
};

int parse(const std::string &s, int i)
{
	if (s.empty() || s[0] == 'x')
		throw ParseError("bad token '" + s + "' number " + std::to_string(i), i);
	if (i % 7 == 0)
		throw std::out_of_range(std::string(100 + i % 300, 'o'));
	return std::stoi(s);
}

void exceptions()
{
	uint64_t sum = 0, errors = 0, ranges = 0, other = 0;
	for (int i = 0; i < 100000; i++) {
		std::string tok = (i % 5 == 0) ? "x" + std::to_string(i) : std::to_string(i);
		try {
			try {
				sum += static_cast<uint64_t>(parse(tok, i));
			} catch (const std::out_of_range &e) {
				ranges += std::string(e.what()).size();
				if (i % 11 == 0)
					throw std::logic_error("rethrown " + std::to_string(i));
			}
		} catch (const ParseError &e) {
			errors += static_cast<uint64_t>(e.at);
		} catch (const std::exception &e) {
			other++;
		}
	}
	std::exception_ptr kept[64];
	for (int i = 0; i < 64; i++) {
		try {
			throw std::vector<int>(static_cast<size_t>(i) * 100, i);
		} catch (...) {
			kept[i] = std::current_exception();
		}
	}
	uint64_t kept_sum = 0;
	for (auto &p : kept) {
		try {
			std::rethrow_exception(p);
		} catch (const std::vector<int> &v) {
			kept_sum += std::accumulate(v.begin(), v.end(), uint64_t{0});
		}
	}
	std::cout << "exceptions: sum " << sum << ", parse errors " << errors << ", ranges " << ranges
		  << ", rethrown " << other << ", kept " << kept_sum << "\n";
}

// Threads: producers allocate messages, consumers free them; shared_ptr and
// std::function cross threads too.
struct Message {
	int producer;
	std::vector<uint32_t> payload;
	std::string tag;
	std::function<uint64_t()> fn;
};

void threads()
{
	const int producers = 3, consumers = 3, per_producer = 40000;
	std::mutex m;
	std::condition_variable cv;
	std::deque<std::unique_ptr<Message>> queue;
	int done = 0;
	std::atomic<uint64_t> total{0}, count{0};
	auto shared = std::make_shared<std::vector<std::string>>();
	std::mutex shared_m;

	std::vector<std::thread> ts;
	for (int p = 0; p < producers; p++)
		ts.emplace_back([&, p] {
			Rng r(100 + static_cast<uint64_t>(p));
			for (int i = 0; i < per_producer; i++) {
				auto msg = std::make_unique<Message>();
				msg->producer = p;
				msg->payload.resize(1 + r() % 64);
				for (auto &v : msg->payload)
					v = r() % 1000;
				msg->tag = word(r);
				auto cap = std::make_shared<uint64_t>(static_cast<uint64_t>(i));
				msg->fn = [cap] { return *cap; };
				{
					std::lock_guard<std::mutex> g(m);
					queue.push_back(std::move(msg));
				}
				cv.notify_one();
			}
			std::lock_guard<std::mutex> g(m);
			done++;
			cv.notify_all();
		});
	for (int c = 0; c < consumers; c++)
		ts.emplace_back([&] {
			std::vector<std::string> mine;
			for (;;) {
				std::unique_ptr<Message> msg;
				{
					std::unique_lock<std::mutex> g(m);
					cv.wait(g, [&] { return !queue.empty() || done == producers; });
					if (queue.empty())
						break;
					msg = std::move(queue.front());
					queue.pop_front();
				}
				uint64_t s = std::accumulate(msg->payload.begin(), msg->payload.end(), uint64_t{0});
				total += s + msg->fn() + msg->tag.size();
				count++;
				if (msg->payload.size() == 64)
					mine.push_back(msg->tag);
				// msg freed here, by a thread that did not allocate it
			}
			std::lock_guard<std::mutex> g(shared_m);
			shared->insert(shared->end(), mine.begin(), mine.end());
		});
	for (auto &t : ts)
		t.join();
	std::sort(shared->begin(), shared->end());
	Digest d;
	for (auto &s : *shared)
		d.add(s);
	std::cout << "threads: " << count.load() << " messages, total " << total.load() << ", kept "
		  << shared->size() << ", digest " << d.hex() << "\n";
}

// Many short-lived threads, each with its own containers.
void thread_churn()
{
	uint64_t sum = 0;
	std::mutex m;
	for (int round = 0; round < 50; round++) {
		std::vector<std::thread> ts;
		for (int t = 0; t < 4; t++)
			ts.emplace_back([&, round, t] {
				std::map<int, std::string> mp;
				for (int i = 0; i < 500; i++)
					mp[i * t + round] = std::string(static_cast<size_t>(i % 40), 'a');
				uint64_t s = 0;
				for (auto &kv : mp)
					s += kv.second.size();
				std::lock_guard<std::mutex> g(m);
				sum += s;
			});
		for (auto &t : ts)
			t.join();
	}
	std::cout << "thread churn: " << sum << "\n";
}

} // namespace

int main()
{
	containers();
	strings();
	exceptions();
	threads();
	thread_churn();
	return 0;
}
